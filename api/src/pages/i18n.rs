//! Languages of the public pages (Vietnamese first, English and simplified
//! Chinese for buyers), choosing one from a query or `Accept-Language`, the
//! message table, and numbers written the way each language writes them.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Vietnamese, the default.
    Vi,
    /// English.
    En,
    /// Chinese, simplified characters.
    Zh,
}

impl Lang {
    /// Every language, in the order of the language switch.
    pub const ALL: [Lang; 3] = [Lang::Vi, Lang::En, Lang::Zh];

    /// The language code of `<html lang>` and `?lang=`: `vi`, `en`, `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The language's own name, as the language switch shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Vi => "Tiếng Việt",
            Lang::En => "English",
            Lang::Zh => "中文",
        }
    }

    /// The language of a `?lang=` value: a language tag whose primary subtag is
    /// `vi`, `en` or `zh` (any case, `-` or `_`: `zh-CN`, `zh-Hans`, `zh_cn`,
    /// `en-GB`, `vi-VN`). `None` for anything else.
    pub fn from_query(s: &str) -> Option<Lang> {
        let tag = s.trim();
        if tag.is_empty() || tag.len() > 35 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return None;
        }
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "vi" | "vie" => Some(Lang::Vi),
            "en" | "eng" => Some(Lang::En),
            // Chinese readers of Taiwan or Hong Kong read simplified characters
            // far better than the Vietnamese default.
            "zh" | "zho" | "chi" | "cmn" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header (RFC 9110 §12.5.4):
    /// the highest `q` wins, ties go to the range listed first; `*` stands for
    /// any language not named, `q=0` rules a language out. Malformed entries
    /// are skipped; without a usable header the answer is Vietnamese.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        // (q in thousandths, position of the range that gave it) per language.
        let mut named: [Option<(u16, usize)>; 3] = [None; 3];
        let mut wildcard: Option<(u16, usize)> = None;
        let Some(header) = accept_language else { return Lang::Vi };
        for (position, entry) in header.split(',').enumerate().take(50) {
            let mut parts = entry.split(';');
            let range = parts.next().unwrap_or_default().trim();
            let Some(q) = parts.map(str::trim).try_fold(1000u16, |q, param| match param.split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("q") => parse_q(value.trim()),
                // Other parameters are not defined for Accept-Language: ignore them.
                _ => Some(q),
            }) else {
                continue;
            };
            if range == "*" {
                wildcard = Some(better(wildcard, (q, position)));
                continue;
            }
            if !valid_range(range) {
                continue;
            }
            if let Some(lang) = Lang::from_query(range) {
                let slot = &mut named[lang as usize];
                // Several ranges can match one language (`zh-CN, zh;q=0.9`): keep the best.
                *slot = Some(better(*slot, (q, position)));
            }
        }
        let mut best: Option<(Lang, (u16, usize))> = None;
        for lang in Lang::ALL {
            let Some((q, position)) = named[lang as usize].or(wildcard) else { continue };
            if q == 0 {
                continue;
            }
            let wins = match best {
                None => true,
                Some((_, (bq, bp))) => q > bq || (q == bq && position < bp),
            };
            if wins {
                best = Some((lang, (q, position)));
            }
        }
        best.map_or(Lang::Vi, |(lang, _)| lang)
    }
}

/// The higher q of two, the earlier position on a tie.
fn better(old: Option<(u16, usize)>, new: (u16, usize)) -> (u16, usize) {
    match old {
        Some(o) if o.0 >= new.0 => o,
        _ => new,
    }
}

/// A quality value (`0`, `0.5`, `1.000`) in thousandths; `None` if malformed.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (thousandths <= 1000).then_some(thousandths)
}

/// A language range of RFC 4647: subtags of 1 to 8 letters or digits, the first letters only.
fn valid_range(range: &str) -> bool {
    let mut subtags = range.split('-');
    let first_ok =
        subtags.next().is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok && subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `1234567.891` as `1.234.567,9` (Vietnamese) or `1,234,567.9` (English,
/// Chinese), with at most `decimals` decimals and no trailing zeros.
pub fn format_number(value: f64, decimals: usize, lang: Lang) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    let (group, point) = match lang {
        Lang::Vi => ('.', ','),
        Lang::En | Lang::Zh => (',', '.'),
    };
    let text = format!("{:.*}", decimals, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    // "-0" after rounding is just 0.
    if value < 0.0 && (int.bytes().any(|b| b != b'0') || !frac.is_empty()) {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push(point);
        out.push_str(frac);
    }
    out
}

/// Declares [`Msg`] and the table of [`t`] together, so that no message can
/// miss a language. Each variant's documentation is its English text.
macro_rules! messages {
    ($($key:ident => [$vi:literal, $en:literal, $zh:literal],)*) => {
        /// A message of the public pages; [`t`] gives its text in each language.
        /// Placeholders in braces (`{n}`, `{code}`) are filled by the caller.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        // Wired in routes: the message-page titles and details are for the
        // handlers to choose; not all of them have a caller yet.
        #[allow(dead_code)]
        pub enum Msg {
            $(#[doc = $en] $key,)*
        }

        impl Msg {
            /// Every message, in declaration order (tests walk the table with it).
            #[cfg(test)]
            pub const ALL: &'static [Msg] = &[$(Msg::$key,)*];
        }

        /// The text of `key` in `lang`.
        pub fn t(lang: Lang, key: Msg) -> &'static str {
            match key {
                $(Msg::$key => match lang {
                    Lang::Vi => $vi,
                    Lang::En => $en,
                    Lang::Zh => $zh,
                },)*
            }
        }
    };
}

messages! {
    // Shared by every page.
    LanguageSwitch => ["Ngôn ngữ", "Language", "语言"],
    OpenFullMap => ["Mở bản đồ đầy đủ", "Open the full map", "打开完整地图"],
    MapOfTree => ["Bản đồ vườn; điểm lớn là cây này", "Map of the orchard; the large marker is this tree", "果园地图；大标记为本树"],
    MapOfLot => ["Bản đồ vườn và các cây của lô này", "Map of the orchard and the trees of this lot", "果园及本批次果树的地图"],
    Origin => ["Nguồn gốc", "Origin", "产地"],
    Orchard => ["Vườn", "Orchard", "果园"],
    Commune => ["Xã", "Commune", "乡"],
    District => ["Huyện", "District", "县"],
    Province => ["Tỉnh", "Province", "省"],
    PlantingAreaCode => ["Mã số vùng trồng", "Planting-area code", "种植区域代码"],
    NoPlantingAreaCode => ["Chưa có mã số vùng trồng", "No planting-area code", "无种植区域代码"],
    PackingHouseCode => ["Mã số cơ sở đóng gói", "Packing-house code", "包装厂代码"],
    Unknown => ["chưa rõ", "unknown", "未知"],
    ScansOne => ["Mã này đã được quét {n} lần.", "This code has been scanned {n} time.", "此码已被扫描 {n} 次。"],
    ScansMany => ["Mã này đã được quét {n} lần.", "This code has been scanned {n} times.", "此码已被扫描 {n} 次。"],
    FlagsHeading => ["Cảnh báo về mã này", "Warnings about this code", "关于此码的警告"],
    Passed => ["Đạt", "Passed", "合格"],
    NotPassed => ["Không đạt", "Not passed", "不合格"],

    // Genuineness of the scanned code.
    GenuineTitle => ["Tem chính hãng (chữ ký hợp lệ)", "Genuine label (valid signature)", "正品标签（签名有效）"],
    GenuineExplainTree => [
        "Chữ ký chứng minh ai đã phát hành mã này, không chứng minh tấm tem này là bản gốc: nếu mã đã được quét ở nhiều nơi, có thể nó đã bị sao chép.",
        "A signature proves who issued this code, not that this tag is the original: if this code was scanned in many places, it may have been copied.",
        "签名只能证明此码由谁签发，不能证明这块标牌是原件：如果此码在许多地方被扫描过，它可能已被复制。"
    ],
    GenuineExplainLot => [
        "Chữ ký chứng minh ai đã phát hành mã này, không chứng minh thùng hàng này là bản gốc: nếu mã đã được quét ở nhiều nơi, có thể nó đã bị sao chép.",
        "A signature proves who issued this code, not that this box is the original: if this code was scanned in many places, it may have been copied.",
        "签名只能证明此码由谁签发，不能证明这一箱是原装：如果此码在许多地方被扫描过，它可能已被复制。"
    ],
    UnsignedTitle => ["Mã chưa ký", "Unsigned code", "未签名的码"],
    UnsignedExplain => [
        "Liên kết này không có chữ ký nên không thể xác minh ai đã phát hành nó. Thông tin dưới đây là hồ sơ của chúng tôi cho mã này.",
        "This link carries no signature, so who issued it cannot be checked. The details below are our records for this code.",
        "此链接没有签名，无法核实由谁签发。以下是我们对此码的记录。"
    ],
    TamperedTitle => ["Tem bị sửa đổi (chữ ký không khớp)", "Tampered label (signature does not match)", "标签被篡改（签名不符）"],
    TamperedExplain => [
        "Chữ ký không khớp với mã này: liên kết đã bị sửa hoặc làm giả. Đừng tin tem này; thông tin dưới đây là hồ sơ của mã, không nhất thiết là của món hàng trước mặt bạn.",
        "The signature does not match this code: the link was altered or forged. Do not trust this label; the details below are our records for the code, not necessarily for what is in front of you.",
        "签名与此码不符：链接已被修改或伪造。请勿信任此标签；以下是我们对此码的记录，不一定属于您眼前的物品。"
    ],
    RevokedTitle => ["Tem đã bị thu hồi", "Label revoked", "标签已撤销"],
    RevokedExplainTree => [
        "Đơn vị phát hành đã thu hồi mã này. Đừng dựa vào tấm tem này nữa; hãy hỏi vườn để lấy tem mới.",
        "The issuer has withdrawn this code. Do not rely on this tag any more; ask the orchard for a new one.",
        "签发方已撤销此码。请勿再信赖此标牌；请向果园索取新标牌。"
    ],
    RevokedExplainLot => [
        "Đơn vị phát hành đã thu hồi tem của lô này (thu hồi sản phẩm, hoặc phát hiện tem bị sao chép). Không mua bán trái cây mang tem này.",
        "The issuer has withdrawn the labels of this lot (a recall, or copied labels were found). Do not sell or buy fruit under this label.",
        "签发方已撤销本批次的标签（产品召回，或发现标签被复制）。请勿买卖贴有此标签的水果。"
    ],
    RevokedReason => ["Lý do: {reason}", "Reason: {reason}", "原因：{reason}"],

    // Tree page.
    TreeTitle => ["Cây sầu riêng {code}", "Durian tree {code}", "榴莲树 {code}"],
    Cultivar => ["Giống", "Cultivar", "品种"],
    PlantedYear => ["Năm trồng", "Planted", "种植年份"],
    Health => ["Tình trạng", "Health", "健康状况"],
    HealthGood => ["Tốt", "Good", "良好"],
    HealthFair => ["Khá", "Fair", "一般"],
    HealthPoor => ["Yếu", "Poor", "较差"],
    HealthDead => ["Chết", "Dead", "死亡"],
    Height => ["Chiều cao", "Height", "高度"],
    Location => ["Địa điểm", "Location", "位置"],
    RecentCare => ["Chăm sóc gần đây", "Recent care", "近期养护记录"],
    NoRecords => ["Chưa có ghi chép nào.", "No records yet.", "暂无记录。"],
    KindObservation => ["Quan sát", "Observation", "观察"],
    KindFertiliser => ["Bón phân", "Fertiliser", "施肥"],
    KindSpray => ["Phun thuốc", "Spraying", "喷药"],
    KindFlowering => ["Ra hoa", "Flowering", "开花"],
    KindFruitSet => ["Đậu trái", "Fruit set", "坐果"],
    KindHarvest => ["Thu hoạch", "Harvest", "采收"],
    KindPhoto => ["Ảnh", "Photo", "照片"],
    PhotoAlt => ["Ảnh cây sầu riêng {code}", "Photo of durian tree {code}", "榴莲树 {code} 的照片"],
    QrOfTag => ["Mã QR của tem này (SVG)", "QR code of this tag (SVG)", "此标牌的二维码（SVG）"],

    // Lot page.
    LotTitle => ["Lô sầu riêng {code}", "Durian lot {code}", "榴莲批次 {code}"],
    DomesticOnly => ["Chỉ tiêu thụ nội địa", "Domestic market only", "仅限国内销售"],
    HarvestDate => ["Ngày thu hoạch", "Harvest date", "采收日期"],
    NetWeight => ["Khối lượng tịnh", "Net weight", "净重"],
    Boxes => ["Số thùng", "Boxes", "箱数"],
    Gtin => ["Mã sản phẩm (GTIN)", "Product code (GTIN)", "商品条码（GTIN）"],
    TreeCount => ["Số cây", "Trees", "果树数量"],
    CultivarsAndTrees => ["Giống và số cây", "Cultivars and trees", "品种及株数"],
    TreesOne => ["{n} cây", "{n} tree", "{n} 棵"],
    TreesMany => ["{n} cây", "{n} trees", "{n} 棵"],
    LabResults => ["Kết quả kiểm nghiệm", "Laboratory results", "检测结果"],
    NoLabResults => [
        "Chưa có kết quả kiểm nghiệm nào cho lô này.",
        "No laboratory results are recorded for this lot.",
        "本批次尚无检测结果记录。"
    ],
    Analyte => ["Chỉ tiêu", "Analyte", "检测项目"],
    Cadmium => ["Cadimi (Cd)", "Cadmium (Cd)", "镉 (Cd)"],
    AuramineO => ["Auramine O", "Auramine O", "金胺O"],
    ResultValue => ["Kết quả", "Result", "结果"],
    Limit => ["Giới hạn", "Limit", "限量"],
    Laboratory => ["Phòng kiểm nghiệm", "Laboratory", "检测机构"],
    TestedOn => ["Ngày kiểm nghiệm", "Tested on", "检测日期"],
    Verdict => ["Đánh giá", "Verdict", "判定"],
    NotDetected => ["Không phát hiện", "Not detected", "未检出"],
    NotPermitted => ["Không được phép có", "Not permitted at all", "不得检出"],
    ReportNo => ["Phiếu kết quả số {no}", "Report no. {no}", "报告编号 {no}"],
    PhiTitle => ["Thời gian cách ly", "Pre-harvest interval", "安全间隔期"],
    PhiExplain => [
        "Ngày thu hoạch được so với lần phun cuối của từng loại thuốc trên các cây của lô.",
        "The harvest date checked against the last spraying of each product on the lot's trees.",
        "按每种药剂在本批次果树上的最后施药日期核对采收日期。"
    ],
    NoSprays => [
        "Không có ghi chép phun thuốc nào trên các cây này trước ngày thu hoạch.",
        "No spraying is recorded on these trees before the harvest date.",
        "采收日期前，这些果树没有施药记录。"
    ],
    Product => ["Thuốc", "Product", "药剂"],
    LastSprayed => ["Lần phun cuối", "Last sprayed", "最后施药日期"],
    PhiDays => ["Thời gian cách ly (ngày)", "Pre-harvest interval (days)", "安全间隔期（天）"],
    HarvestAllowedFrom => ["Được thu hoạch từ", "Harvest allowed from", "允许采收日期"],

    // Register page.
    RegisterTitle => ["Đăng ký cây cho tem {code}", "Register a tree for tag {code}", "为标牌 {code} 登记果树"],
    RegisterIntro => [
        "Đứng sát gốc cây, chờ GPS ổn định rồi điền các mục dưới đây.",
        "Stand at the trunk, wait for the GPS to settle, then fill in the form below.",
        "请站在树干旁，等待GPS稳定后填写下表。"
    ],
    NeedsJavaScript => ["Trang này cần bật JavaScript.", "This page needs JavaScript.", "此页面需要启用JavaScript。"],
    AlreadyAssigned => ["Tem này đã được gắn cho một cây.", "This tag is already on a tree.", "此标牌已绑定一棵树。"],
    SeeThatTree => ["Xem cây đó", "See that tree", "查看该树"],
    Reassign => [
        "Chuyển tem này sang cây mới (chỉ quản trị viên)",
        "Re-assign this tag to a new tree (administrators only)",
        "将此标牌改绑到新树（仅限管理员）"
    ],
    AccessCode => ["Mã truy cập của bạn", "Your access code", "您的访问码"],
    AccessCodeHint => [
        "Mã do điều phối viên cấp cho bạn; được lưu trên điện thoại này.",
        "The code your coordinator gave you; it is kept on this phone.",
        "协调员发给您的访问码，将保存在本手机上。"
    ],
    SignIn => ["Đăng nhập", "Sign in", "登录"],
    SignedInAs => ["Đã đăng nhập: {name}", "Signed in as {name}", "已登录：{name}"],
    SignOut => ["Đăng xuất", "Sign out", "退出登录"],
    Checking => ["Đang kiểm tra…", "Checking…", "正在验证…"],
    TokenInvalid => ["Mã truy cập của bạn không hợp lệ.", "Your access code is not valid.", "您的访问码无效。"],
    NotAllowed => [
        "Mã truy cập của bạn không được phép đăng ký cây.",
        "Your access code is not allowed to register trees.",
        "您的访问码无权登记果树。"
    ],
    Position => ["Vị trí cây", "Tree position", "树的位置"],
    Latitude => ["Vĩ độ", "Latitude", "纬度"],
    Longitude => ["Kinh độ", "Longitude", "经度"],
    Accuracy => ["Độ chính xác", "Accuracy", "精度"],
    GpsGood => ["GPS tốt", "GPS good", "GPS信号良好"],
    GpsFair => ["GPS tạm được", "GPS fair", "GPS信号一般"],
    GpsPoor => [
        "GPS kém: chờ thêm hoặc ra chỗ thoáng",
        "GPS poor: wait, or move into the open",
        "GPS信号较差：请稍候或移到开阔处"
    ],
    WaitingForGps => ["Đang chờ GPS…", "Waiting for GPS…", "正在等待GPS…"],
    GeoDenied => [
        "Không có quyền dùng vị trí: hãy cho phép trang này dùng vị trí trong cài đặt trình duyệt.",
        "Location permission denied: allow this page to use your location in the browser settings.",
        "未获得位置权限：请在浏览器设置中允许此页面使用位置。"
    ],
    GeoUnavailable => [
        "Không lấy được vị trí (GPS đang tắt, hoặc trang không dùng https).",
        "No position available (GPS is off, or the page is not on https).",
        "无法获取位置（GPS未开启，或页面未使用https）。"
    ],
    UsePosition => ["Dùng vị trí này", "Use this position", "使用此位置"],
    PositionLocked => ["Đã chốt vị trí: chạm để đo lại", "Position locked: tap to measure again", "位置已锁定：点击重新测量"],
    NeedPosition => ["Chưa có vị trí.", "No position yet.", "尚未获得位置。"],
    OtherCultivar => ["Giống khác", "Other cultivar", "其他品种"],
    OtherCultivarName => ["Tên giống khác", "Name of the other cultivar", "其他品种名称"],
    NeedCultivar => ["Hãy chọn giống.", "Choose the cultivar.", "请选择品种。"],
    NeedHealth => ["Hãy chọn tình trạng cây.", "Choose the tree's health.", "请选择树的健康状况。"],
    YearRange => [
        "Năm trồng phải từ 1950 đến {year}.",
        "The planting year must be from 1950 to {year}.",
        "种植年份须在1950至{year}之间。"
    ],
    HeightOptional => ["Chiều cao (m, không bắt buộc)", "Height (m, optional)", "高度（米，选填）"],
    HeightRange => ["Chiều cao phải từ 0 đến 60 m.", "The height must be from 0 to 60 m.", "高度须在0至60米之间。"],
    PhotoOptional => ["Ảnh (không bắt buộc)", "Photo (optional)", "照片（选填）"],
    Save => ["Lưu cây", "Save the tree", "保存果树"],
    Saving => ["Đang lưu…", "Saving…", "正在保存…"],
    UploadingPhoto => ["Đang tải ảnh lên…", "Uploading the photo…", "正在上传照片…"],
    Saved => ["Đã lưu.", "Saved.", "已保存。"],
    PhotoFailed => [
        "Cây đã được lưu nhưng ảnh chưa tải lên được: {error}",
        "The tree is saved, but the photo was not uploaded: {error}",
        "果树已保存，但照片未能上传：{error}"
    ],
    OpenTreePage => ["Mở trang của cây", "Open the tree's page", "打开该树页面"],
    NetworkError => [
        "Không có kết nối: chưa lưu gì. Hãy thử lại khi có sóng.",
        "No connection: nothing was saved. Try again when you have signal.",
        "无网络连接：尚未保存。请在有信号时重试。"
    ],
    ServerError => [
        "Máy chủ báo lỗi ({status}): {error}",
        "The server answered with an error ({status}): {error}",
        "服务器返回错误（{status}）：{error}"
    ],
    FixMarked => ["Hãy sửa các mục được đánh dấu.", "Please correct the marked fields.", "请修改标出的项目。"],

    // Message pages (unknown code, bad link, ...): titles and their usual details.
    UnknownCode => ["Không tìm thấy mã này", "Unknown code", "未找到此码"],
    UnknownCodeDetail => [
        "Không có cây hay lô hàng nào mang mã này. Hãy kiểm tra lại tem, hoặc quét lại.",
        "No tree or lot carries this code. Check the label, or scan it again.",
        "没有果树或批次使用此码。请检查标签，或重新扫描。"
    ],
    BadLink => ["Liên kết không hợp lệ", "This link is not valid", "链接无效"],
    BadLinkDetail => [
        "Liên kết này bị hỏng hoặc không đầy đủ; có thể mã QR đã mờ hoặc rách.",
        "This link is damaged or incomplete; the QR code may be worn or torn.",
        "此链接已损坏或不完整；二维码可能已磨损或破损。"
    ],
    TooManyRequests => ["Quá nhiều yêu cầu", "Too many requests", "请求过多"],
    TooManyRequestsDetail => ["Hãy chờ một chút rồi thử lại.", "Wait a moment, then try again.", "请稍候再试。"],
    ServerTrouble => ["Máy chủ gặp sự cố", "Something went wrong on our side", "服务器出错"],
    ServerTroubleDetail => ["Xin thử lại sau ít phút.", "Please try again in a few minutes.", "请几分钟后重试。"],
    ErrorCode => ["Mã lỗi {status}", "Error {status}", "错误代码 {status}"],
    GoToMap => ["Xem bản đồ vườn", "Go to the orchard map", "查看果园地图"],
}

impl Msg {
    /// Whether the three languages may write this message the same way (proper nouns).
    #[cfg(test)]
    pub fn same_in_all_languages(self) -> bool {
        matches!(self, Msg::AuramineO)
    }
}

/// `t(lang, key)` with each `{name}` replaced by its value (values are not escaped here).
pub fn fill(lang: Lang, key: Msg, values: &[(&str, &str)]) -> String {
    let mut text = t(lang, key).to_string();
    for (name, value) in values {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// The singular or plural message for a count (only English tells them apart).
pub fn count(lang: Lang, one: Msg, many: Msg, n: u64) -> String {
    let n_text = format_number(n as f64, 0, lang);
    fill(lang, if n == 1 { one } else { many }, &[("n", &n_text)])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(name, _)| name)).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn every_message_is_complete_in_every_language() {
        for &key in Msg::ALL {
            let [vi, en, zh] = Lang::ALL.map(|l| t(l, key));
            for (lang, text) in [("vi", vi), ("en", en), ("zh", zh)] {
                assert!(!text.trim().is_empty(), "{key:?} is empty in {lang}");
                assert_eq!(text.trim(), text, "{key:?} in {lang} has stray spaces");
            }
            if !key.same_in_all_languages() {
                assert_ne!(vi, en, "{key:?}: Vietnamese is the English text");
                assert_ne!(zh, en, "{key:?}: Chinese is the English text");
                assert_ne!(zh, vi, "{key:?}: Chinese is the Vietnamese text");
                assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{key:?}: no Chinese in {zh:?}");
            }
            assert_eq!(placeholders(vi), placeholders(en), "{key:?}: placeholders differ");
            assert_eq!(placeholders(zh), placeholders(en), "{key:?}: placeholders differ");
        }
    }

    #[test]
    fn the_required_terms_are_used() {
        assert_eq!(t(Lang::Vi, Msg::PlantingAreaCode), "Mã số vùng trồng");
        assert_eq!(t(Lang::Zh, Msg::PackingHouseCode), "包装厂代码");
        assert_eq!(t(Lang::Vi, Msg::HealthPoor), "Yếu");
        assert_eq!(t(Lang::Zh, Msg::HealthDead), "死亡");
        assert_eq!(t(Lang::Zh, Msg::AuramineO), "金胺O");
        assert_eq!(t(Lang::Zh, Msg::DomesticOnly), "仅限国内销售");
        assert_eq!(t(Lang::Vi, Msg::PhiTitle), "Thời gian cách ly");
        assert!(t(Lang::En, Msg::GenuineExplainLot).starts_with("A signature proves who issued this code"));
    }

    #[test]
    fn negotiate_follows_rfc_9110() {
        let cases = [
            ("zh-CN,zh;q=0.9,en;q=0.8", Lang::Zh),
            ("en-US", Lang::En),
            ("fr", Lang::Vi),
            ("*", Lang::Vi),
            ("vi;q=0.1, en;q=0.5", Lang::En),
            ("garbage ;; ,,, q=", Lang::Vi),
            ("", Lang::Vi),
            ("fr-FR, en;q=0.7, zh-CN;q=0.8", Lang::Zh),
            ("en;q=0.5, zh;q=0.5", Lang::En),
            ("vi;q=0, *", Lang::En),
            ("en;q=1.5, zh", Lang::Zh),
            ("en;q=0.9999, zh;q=0.5", Lang::Zh),
            ("EN-gb;Q=0.9", Lang::En),
            ("zh-Hant-TW", Lang::Zh),
            ("en_US", Lang::Vi),
            ("vi-VN,vi;q=0.9,fr-FR;q=0.8,en-US;q=0.7", Lang::Vi),
            ("en;q=0", Lang::Vi),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::negotiate(Some(header)), want, "{header:?}");
        }
        assert_eq!(Lang::negotiate(None), Lang::Vi);
    }

    #[test]
    fn query_values() {
        for (q, want) in [
            ("vi", Some(Lang::Vi)),
            ("en", Some(Lang::En)),
            ("zh", Some(Lang::Zh)),
            ("zh-CN", Some(Lang::Zh)),
            ("zh-Hans", Some(Lang::Zh)),
            ("zh_cn", Some(Lang::Zh)),
            ("EN-gb", Some(Lang::En)),
            (" vi ", Some(Lang::Vi)),
            ("fr", None),
            ("", None),
            ("zh;q=1", None),
            ("<script>", None),
        ] {
            assert_eq!(Lang::from_query(q), want, "{q:?}");
        }
        for lang in Lang::ALL {
            assert_eq!(Lang::from_query(lang.code()), Some(lang));
        }
    }

    #[test]
    fn numbers_per_language() {
        assert_eq!(format_number(1234567.891, 1, Lang::Vi), "1.234.567,9");
        assert_eq!(format_number(1234567.891, 1, Lang::En), "1,234,567.9");
        assert_eq!(format_number(1200.0, 1, Lang::Zh), "1,200");
        assert_eq!(format_number(0.05, 3, Lang::Vi), "0,05");
        assert_eq!(format_number(999.0, 0, Lang::En), "999");
        assert_eq!(format_number(-0.0001, 2, Lang::En), "0");
        assert_eq!(format_number(-1500.5, 1, Lang::En), "-1,500.5");
        assert_eq!(format_number(f64::NAN, 1, Lang::En), "—");
        assert_eq!(count(Lang::En, Msg::TreesOne, Msg::TreesMany, 1), "1 tree");
        assert_eq!(count(Lang::En, Msg::TreesOne, Msg::TreesMany, 1500), "1,500 trees");
        assert_eq!(count(Lang::Vi, Msg::TreesOne, Msg::TreesMany, 1500), "1.500 cây");
    }
}
