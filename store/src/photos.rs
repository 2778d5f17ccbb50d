//! Photos of trees, stored content-addressed on disk beside the database.
//!
//! A [`PhotoStore`] is a folder. Each accepted photo is kept under its SHA-256
//! as `<root>/<aa>/<sha256>.<jpg|png>` (`aa`: the first two hex digits of the
//! hash, so no folder grows past a few thousand entries), with a JPEG
//! thumbnail beside it as `<root>/<aa>/<sha256>.thumb.jpg` (longest side
//! [`THUMBNAIL_SIZE`] pixels). Both are written atomically (a temporary file in
//! the same folder, then a rename), so a reader never sees half a file, and
//! storing the same bytes twice writes nothing the second time.
//!
//! Only JPEG and PNG are accepted, recognised by their first bytes (never by a
//! file name or a client's content type), and every upload is decoded in full
//! before anything is written: truncated or corrupt files are refused, and so
//! are images whose decoding would take more than [`MAX_PIXELS`] pixels or
//! [`MAX_DECODE_BYTES`] of memory.
//!
//! Everything here is synchronous and [`PhotoStore::put`] is CPU-bound
//! (decoding, resizing, hashing): async callers run it in
//! `tokio::task::spawn_blocking`.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use sha2::{Digest, Sha256};

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIZE: u32 = 256;

/// JPEG quality of thumbnails (1-100).
pub const THUMBNAIL_QUALITY: u8 = 80;

/// Largest image accepted, in pixels (width × height): 40 megapixels, more
/// than any phone camera takes.
pub const MAX_PIXELS: u64 = 40_000_000;

/// Most memory the decoder may allocate for one image: 512 MiB.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Why a photo could not be stored or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhotoError {
    /// The upload is larger than the configured limit.
    #[error("the photo is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Size of the upload, in bytes.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// The bytes are neither a JPEG nor a PNG image (judged by their first bytes).
    #[error("not a JPEG or PNG image")]
    NotAnImage,
    /// A JPEG or PNG that cannot be used: empty, truncated, corrupt, or too
    /// large to decode (more than [`MAX_PIXELS`] pixels). The reason says which.
    #[error("unusable image: {0}")]
    Corrupt(String),
    /// A photo name that is not 64 lower-case hex digits (a SHA-256).
    #[error("not a photo name (64 lower-case hex digits): {0:?}")]
    BadName(String),
    /// The thumbnail could not be encoded.
    #[error("cannot make the thumbnail: {0}")]
    Thumbnail(String),
    /// Reading or writing the photo folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

impl PhotoError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_path_buf(), source }
    }
}

/// The image formats a [`PhotoStore`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageKind {
    /// JPEG (JFIF / Exif), what cameras and phones take.
    Jpeg,
    /// PNG.
    Png,
}

impl ImageKind {
    /// The MIME type: `image/jpeg` or `image/png`.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// The file extension used on disk, without the dot: `jpg` or `png`.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    const ALL: [ImageKind; 2] = [ImageKind::Jpeg, ImageKind::Png];

    fn format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
        }
    }
}

const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

/// The kind of image `bytes` hold, from their first bytes (JPEG: `FF D8 FF`;
/// PNG: `89 50 4E 47 0D 0A 1A 0A`), or `None` for anything else. Says nothing
/// about whether the rest of the file is sound.
#[must_use]
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(JPEG_MAGIC) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG_MAGIC) {
        Some(ImageKind::Png)
    } else {
        None
    }
}

/// A photo kept by [`PhotoStore::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    /// SHA-256 of the bytes, 64 lower-case hex digits: the photo's name.
    pub sha256: String,
    /// JPEG or PNG.
    pub kind: ImageKind,
    /// Width in pixels, as displayed (after the Exif orientation, if any).
    pub width: u32,
    /// Height in pixels, as displayed (after the Exif orientation, if any).
    pub height: u32,
    /// Size of the file, in bytes.
    pub bytes: u64,
}

/// A folder of photos, content-addressed by SHA-256 (see the module docs).
#[derive(Debug, Clone)]
pub struct PhotoStore {
    root: PathBuf,
}

impl PhotoStore {
    /// A store rooted at `dir`. Nothing is touched on disk until the first
    /// [`put`](Self::put), which creates the folder.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { root: dir }
    }

    /// The default photo folder for a database location, as taken by
    /// [`crate::open`]: for a SQLite file (`trees.db`, `sqlite:trees.db` or
    /// `sqlite://trees.db`) the folder `trees-photos` beside it. `None` for a
    /// PostgreSQL URL or an in-memory database (`:memory:`), which have no
    /// folder of their own: callers must then be given one.
    #[must_use]
    pub fn beside_database(location: &str) -> Option<PhotoStore> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return None;
        }
        let path = location.strip_prefix("sqlite://").or_else(|| location.strip_prefix("sqlite:")).unwrap_or(location);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        let path = Path::new(path);
        let stem = path.file_stem()?;
        let mut name = stem.to_os_string();
        name.push("-photos");
        let dir = path.parent().unwrap_or_else(|| Path::new(""));
        Some(Self::new(dir.join(name)))
    }

    /// The folder holding the photos.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks and keeps a photo; returns its name (SHA-256) and dimensions.
    ///
    /// Refuses, writing nothing: more than `max_bytes` bytes
    /// ([`PhotoError::TooLarge`]); anything that is not a JPEG or PNG by its
    /// first bytes ([`PhotoError::NotAnImage`]); an empty, truncated or corrupt
    /// file, or one over [`MAX_PIXELS`] / [`MAX_DECODE_BYTES`]
    /// ([`PhotoError::Corrupt`]). Then writes the original and its thumbnail
    /// (see the module docs); bytes already stored are not written again.
    /// CPU-bound: run it on a blocking thread from async code.
    pub fn put(&self, bytes: &[u8], max_bytes: usize) -> Result<StoredPhoto, PhotoError> {
        if bytes.len() > max_bytes {
            return Err(PhotoError::TooLarge { size: len_u64(bytes.len()), max: len_u64(max_bytes) });
        }
        if bytes.is_empty() {
            return Err(PhotoError::Corrupt("the file is empty".into()));
        }
        let kind = sniff(bytes).ok_or(PhotoError::NotAnImage)?;
        let decoded = decode(bytes, kind, MAX_PIXELS)?;
        let sha256 = hex(&Sha256::digest(bytes));
        let dir = self.shard_dir(&sha256);
        fs::create_dir_all(&dir).map_err(|e| PhotoError::io(&dir, e))?;
        // The thumbnail first: whenever the original is there, so is its thumbnail.
        let thumb_path = dir.join(format!("{sha256}.thumb.jpg"));
        if !exists(&thumb_path)? {
            let thumb = thumbnail(&decoded.image, decoded.orientation)?;
            write_atomically(&dir, &thumb_path, &thumb)?;
        }
        let original = dir.join(format!("{sha256}.{}", kind.extension()));
        if !exists(&original)? {
            write_atomically(&dir, &original, bytes)?;
        }
        let (width, height) = decoded.displayed_size();
        Ok(StoredPhoto { sha256, kind, width, height, bytes: len_u64(bytes.len()) })
    }

    /// Finds a stored photo (or, with `thumbnail`, its JPEG thumbnail) by its
    /// SHA-256: the file's path and content type, or `None` if it is not kept
    /// here. A name that is not exactly 64 lower-case hex digits is refused
    /// with [`PhotoError::BadName`] before any file is looked at, so no name
    /// can reach outside the folder.
    pub fn open(&self, sha256: &str, thumbnail: bool) -> Result<Option<(PathBuf, &'static str)>, PhotoError> {
        if !is_sha256_hex(sha256) {
            let shown: String = sha256.chars().take(80).collect();
            return Err(PhotoError::BadName(shown));
        }
        let dir = self.shard_dir(sha256);
        if thumbnail {
            let path = dir.join(format!("{sha256}.thumb.jpg"));
            return Ok(exists(&path)?.then_some((path, ImageKind::Jpeg.content_type())));
        }
        for kind in ImageKind::ALL {
            let path = dir.join(format!("{sha256}.{}", kind.extension()));
            if exists(&path)? {
                return Ok(Some((path, kind.content_type())));
            }
        }
        Ok(None)
    }

    fn shard_dir(&self, sha256: &str) -> PathBuf {
        self.root.join(sha256.get(..2).unwrap_or("00"))
    }
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    out
}

fn exists(path: &Path) -> Result<bool, PhotoError> {
    path.try_exists().map_err(|e| PhotoError::io(path, e))
}

/// Writes `bytes` to `target` through a temporary file in `dir` (the same
/// folder, so the rename is atomic), synced before the rename.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), PhotoError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| PhotoError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| PhotoError::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| PhotoError::io(tmp.path(), e))?;
    // Same content under the same name: if another upload of these bytes won
    // the race, replacing its file changes nothing.
    tmp.persist(target).map_err(|e| PhotoError::io(target, e.error))?;
    #[cfg(unix)]
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| PhotoError::io(dir, e))?;
    Ok(())
}

/// A fully decoded upload.
struct Decoded {
    image: DynamicImage,
    orientation: Orientation,
}

impl Decoded {
    fn displayed_size(&self) -> (u32, u32) {
        let (w, h) = (self.image.width(), self.image.height());
        match self.orientation {
            Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH => (h, w),
            _ => (w, h),
        }
    }
}

/// Decodes the whole image, within [`MAX_DECODE_BYTES`] and `max_pixels`.
fn decode(bytes: &[u8], kind: ImageKind, max_pixels: u64) -> Result<Decoded, PhotoError> {
    if kind == ImageKind::Jpeg {
        // The JPEG decoder is lenient and paints a truncated scan grey rather
        // than failing: check the file runs to its end marker first.
        check_jpeg_structure(bytes).map_err(PhotoError::Corrupt)?;
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(PhotoError::Corrupt(format!(
            "the image is {width}x{height} pixels ({:.1} megapixels), over the limit of {:.1} megapixels",
            megapixels(pixels),
            megapixels(max_pixels)
        )));
    }
    if pixels == 0 {
        return Err(PhotoError::Corrupt(format!("the image is {width}x{height} pixels")));
    }
    // A missing or unreadable Exif block is no reason to refuse a photo.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok(Decoded { image, orientation })
}

#[allow(clippy::cast_precision_loss)]
fn megapixels(pixels: u64) -> f64 {
    pixels as f64 / 1_000_000.0
}

fn decode_error(e: ImageError) -> PhotoError {
    match e {
        ImageError::Limits(e) => PhotoError::Corrupt(format!(
            "decoding the image would take more than the {} MiB allowed ({e})",
            MAX_DECODE_BYTES / (1024 * 1024)
        )),
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            PhotoError::Corrupt("the file is truncated".into())
        }
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Walks a JPEG's markers from start-of-image to end-of-image, skipping
/// segments by their length and entropy-coded data up to the next marker.
/// Bytes after the end-of-image marker (some phones append data there) are
/// allowed; a file that stops before it is not.
fn check_jpeg_structure(b: &[u8]) -> Result<(), String> {
    const TRUNCATED: &str = "the JPEG file is truncated (it ends before its end-of-image marker)";
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG file".into());
    }
    let mut i = 2;
    loop {
        match b.get(i) {
            None => return Err(TRUNCATED.into()),
            Some(0xFF) => {}
            Some(_) => return Err(format!("the JPEG file is corrupt (no marker at byte {i})")),
        }
        // Any number of 0xFF fill bytes may precede a marker code.
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else { return Err(TRUNCATED.into()) };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // Markers without a segment: TEM and restart markers.
            0x01 | 0xD0..=0xD7 => continue,
            0x00 | 0xD8 => return Err(format!("the JPEG file is corrupt (unexpected marker at byte {})", i - 2)),
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (b.get(i), b.get(i + 1)) else { return Err(TRUNCATED.into()) };
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        if length < 2 {
            return Err(format!("the JPEG file is corrupt (bad segment length at byte {i})"));
        }
        i += length;
        if i > b.len() {
            return Err(TRUNCATED.into());
        }
        if marker == 0xDA {
            // Start of scan: entropy-coded data, in which 0xFF is followed by
            // a stuffed 0x00, a restart marker or more fill bytes; any other
            // code is the next marker.
            loop {
                let Some(offset) = b.get(i..).and_then(|rest| rest.iter().position(|&x| x == 0xFF)) else {
                    return Err(TRUNCATED.into());
                };
                let at = i + offset;
                match b.get(at + 1) {
                    None => return Err(TRUNCATED.into()),
                    Some(0x00 | 0xD0..=0xD7) => i = at + 2,
                    Some(0xFF) => i = at + 1,
                    Some(_) => {
                        i = at;
                        break;
                    }
                }
            }
        }
    }
}

/// The JPEG thumbnail: longest side at most [`THUMBNAIL_SIZE`] (never
/// enlarged), turned upright, transparency flattened onto white.
fn thumbnail(image: &DynamicImage, orientation: Orientation) -> Result<Vec<u8>, PhotoError> {
    let mut small = if image.width().max(image.height()) > THUMBNAIL_SIZE {
        image.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    } else {
        image.clone()
    };
    small.apply_orientation(orientation);
    let rgb = if small.color().has_alpha() { flatten_on_white(&small) } else { small.to_rgb8() };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, THUMBNAIL_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| PhotoError::Thumbnail(e.to_string()))?;
    Ok(out)
}

fn flatten_on_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        let blend = |c: u8| {
            let v = (u16::from(c) * a + 255 * (255 - a) + 127) / 255;
            u8::try_from(v).unwrap_or(u8::MAX)
        };
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, Rgba};

    fn gradient(width: u32, height: u32) -> RgbImage {
        ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, ((x + y) % 256) as u8])
        })
    }

    fn png_bytes(image: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg_bytes(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
        out
    }

    fn sha_of(bytes: &[u8]) -> String {
        hex(&Sha256::digest(bytes))
    }

    fn decode_file(path: &Path) -> DynamicImage {
        ImageReader::open(path).unwrap().with_guessed_format().unwrap().decode().unwrap()
    }

    const MAX: usize = 10 * 1024 * 1024;

    #[test]
    fn sniffs_by_magic_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageKind::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageKind::Png));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"\x89PNG"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(ImageKind::Jpeg.content_type(), "image/jpeg");
        assert_eq!(ImageKind::Png.content_type(), "image/png");
        assert_eq!(ImageKind::Jpeg.extension(), "jpg");
        assert_eq!(ImageKind::Png.extension(), "png");
    }

    #[test]
    fn stores_a_png_with_its_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().join("photos"));
        let bytes = png_bytes(&DynamicImage::ImageRgb8(gradient(600, 300)));
        let stored = store.put(&bytes, MAX).unwrap();
        let sha = sha_of(&bytes);
        assert_eq!(
            stored,
            StoredPhoto {
                sha256: sha.clone(),
                kind: ImageKind::Png,
                width: 600,
                height: 300,
                bytes: bytes.len() as u64
            }
        );
        let original = dir.path().join("photos").join(&sha[..2]).join(format!("{sha}.png"));
        assert_eq!(fs::read(&original).unwrap(), bytes);

        let (path, content_type) = store.open(&sha, false).unwrap().unwrap();
        assert_eq!((path.as_path(), content_type), (original.as_path(), "image/png"));
        let (thumb, content_type) = store.open(&sha, true).unwrap().unwrap();
        assert_eq!(content_type, "image/jpeg");
        assert_eq!(thumb, original.with_file_name(format!("{sha}.thumb.jpg")));
        assert_eq!(sniff(&fs::read(&thumb).unwrap()), Some(ImageKind::Jpeg));
        let decoded = decode_file(&thumb);
        assert_eq!((decoded.width(), decoded.height()), (256, 128));
        // No temporary file left behind.
        let names: Vec<_> = fs::read_dir(original.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn stores_a_jpeg_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().to_path_buf());
        let bytes = jpeg_bytes(&gradient(300, 600));
        let first = store.put(&bytes, MAX).unwrap();
        assert_eq!(first.sha256, sha_of(&bytes));
        assert_eq!((first.kind, first.width, first.height), (ImageKind::Jpeg, 300, 600));
        let (path, content_type) = store.open(&first.sha256, false).unwrap().unwrap();
        assert_eq!(content_type, "image/jpeg");
        assert!(path.to_string_lossy().ends_with(".jpg"));
        let (thumb, _) = store.open(&first.sha256, true).unwrap().unwrap();
        let decoded = decode_file(&thumb);
        assert_eq!((decoded.width(), decoded.height()), (128, 256));

        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        let second = store.put(&bytes, MAX).unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
        let shard = path.parent().unwrap();
        assert_eq!(fs::read_dir(shard).unwrap().count(), 2);

        // A lost thumbnail is made again.
        fs::remove_file(&thumb).unwrap();
        store.put(&bytes, MAX).unwrap();
        assert!(thumb.exists());
    }

    #[test]
    fn small_images_are_not_enlarged_and_alpha_goes_white() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().to_path_buf());
        let clear = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(100, 50, Rgba([0, 0, 0, 0])));
        let stored = store.put(&png_bytes(&clear), MAX).unwrap();
        let (thumb, _) = store.open(&stored.sha256, true).unwrap().unwrap();
        let decoded = decode_file(&thumb).to_rgb8();
        assert_eq!(decoded.dimensions(), (100, 50));
        let Rgb([r, g, b]) = *decoded.get_pixel(50, 25);
        assert!(r > 245 && g > 245 && b > 245, "{r} {g} {b}");
    }

    #[test]
    fn refuses_what_is_not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().join("photos"));
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        assert!(matches!(store.put(gif, MAX), Err(PhotoError::NotAnImage)));
        assert!(matches!(store.put(b"tree,lat,lon\n1,12.6,102.1\n", MAX), Err(PhotoError::NotAnImage)));
        let err = store.put(b"", MAX).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt(_)), "{err}");
        assert!(!dir.path().join("photos").exists(), "nothing written for a refused upload");
    }

    #[test]
    fn refuses_truncated_and_corrupt_images() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().join("photos"));
        let png = png_bytes(&DynamicImage::ImageRgb8(gradient(600, 300)));
        let err = store.put(&png[..png.len() / 2], MAX).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt(_)), "{err}");
        let err = store.put(&png[..20], MAX).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt(_)), "{err}");

        let jpeg = jpeg_bytes(&gradient(600, 300));
        for cut in [jpeg.len() / 2, jpeg.len() - 2, 200, 4] {
            let err = store.put(&jpeg[..cut], MAX).unwrap_err();
            assert!(matches!(err, PhotoError::Corrupt(_)), "cut at {cut}: {err}");
        }
        let mut garbled = png.clone();
        for b in &mut garbled[100..200] {
            *b ^= 0x5A;
        }
        let err = store.put(&garbled, MAX).unwrap_err();
        assert!(matches!(err, PhotoError::Corrupt(_)), "{err}");
        assert!(!dir.path().join("photos").exists(), "nothing written for a refused upload");

        // Data after the end-of-image marker is allowed (some phones append some).
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"\0\0appended");
        store.put(&trailing, MAX).unwrap();
    }

    #[test]
    fn refuses_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().to_path_buf());
        let png = png_bytes(&DynamicImage::ImageRgb8(gradient(600, 300)));
        let err = store.put(&png, 100).unwrap_err();
        assert!(matches!(err, PhotoError::TooLarge { size, max: 100 } if size == png.len() as u64), "{err}");
        assert!(err.to_string().contains("100 bytes"), "{err}");
        store.put(&png, png.len()).unwrap();

        let err = decode(&png, ImageKind::Png, 100_000).err().unwrap();
        assert!(matches!(&err, PhotoError::Corrupt(m) if m.contains("600x300")), "{err}");
    }

    #[test]
    fn open_refuses_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::new(dir.path().to_path_buf());
        let sha = "ab".repeat(32);
        for bad in [
            "../etc/passwd".to_string(),
            sha.to_uppercase(),
            sha[..63].to_string(),
            format!("{sha}0"),
            format!("../{}", &sha[3..]),
            String::new(),
            format!("{}g", &sha[..63]),
        ] {
            assert!(matches!(store.open(&bad, false), Err(PhotoError::BadName(_))), "{bad}");
            assert!(matches!(store.open(&bad, true), Err(PhotoError::BadName(_))), "{bad}");
        }
        assert_eq!(store.open(&sha, false).unwrap(), None);
        assert_eq!(store.open(&sha, true).unwrap(), None);
    }

    #[test]
    fn folder_beside_the_database() {
        let root = |loc: &str| PhotoStore::beside_database(loc).map(|s| s.root().to_path_buf());
        assert_eq!(root("/var/lib/orchardmap/trees.db"), Some(PathBuf::from("/var/lib/orchardmap/trees-photos")));
        assert_eq!(root("sqlite:///data/farm.sqlite3"), Some(PathBuf::from("/data/farm-photos")));
        assert_eq!(root("sqlite://data/farm.db"), Some(PathBuf::from("data/farm-photos")));
        assert_eq!(root("sqlite:farm.db"), Some(PathBuf::from("farm-photos")));
        assert_eq!(root("trees.db"), Some(PathBuf::from("trees-photos")));
        assert_eq!(root(":memory:"), None);
        assert_eq!(root("sqlite::memory:"), None);
        assert_eq!(root("postgres://u@localhost/orchard"), None);
        assert_eq!(root("postgresql://u@localhost/orchard"), None);
    }
}
