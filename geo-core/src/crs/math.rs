//! The numerics behind [`Crs`](super::Crs): ellipsoids, geocentric coordinates, Helmert shifts and the
//! two cylindrical projections. Angles are degrees at this module's boundary and radians inside.

use std::f64::consts::PI;

/// PROJ refuses transverse Mercator points whose `η'` (or `η`) exceeds this, about 81.7 degrees of
/// longitude from the central meridian on the equator; beyond it the series are meaningless.
const ETA_MAX: f64 = 2.623_395_162_778;

/// Arc-seconds to radians.
const ARCSEC: f64 = PI / 648_000.0;

/// An ellipsoid of revolution (a sphere when `f` is 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ellipsoid {
    /// Semi-major axis in metres.
    pub a: f64,
    /// Flattening.
    pub f: f64,
}

impl Ellipsoid {
    /// WGS 84 (also the ellipsoid of VN-2000).
    pub const WGS84: Ellipsoid = Ellipsoid { a: 6_378_137.0, f: 1.0 / 298.257_223_563 };
    /// GRS 1980, PROJ's default ellipsoid.
    pub const GRS80: Ellipsoid = Ellipsoid { a: 6_378_137.0, f: 1.0 / 298.257_222_101 };

    /// First eccentricity squared.
    pub fn e2(&self) -> f64 {
        self.f * (2.0 - self.f)
    }

    /// Geodetic longitude, latitude (degrees) and height (metres) to geocentric X, Y, Z (metres).
    pub fn geocentric(&self, lon: f64, lat: f64, h: f64) -> [f64; 3] {
        let e2 = self.e2();
        let (sl, cl) = lon.to_radians().sin_cos();
        let (sp, cp) = lat.to_radians().sin_cos();
        let n = self.a / (1.0 - e2 * sp * sp).sqrt();
        [(n + h) * cp * cl, (n + h) * cp * sl, (n * (1.0 - e2) + h) * sp]
    }

    /// Geocentric X, Y, Z (metres) to longitude, latitude (degrees) and height (metres).
    pub fn geodetic(&self, xyz: [f64; 3]) -> (f64, f64, f64) {
        let (lam, phi, p) = self.bowring(xyz);
        let e2 = self.e2();
        let (sp, cp) = phi.sin_cos();
        let n = self.a / (1.0 - e2 * sp * sp).sqrt();
        let h = if cp.abs() > 1e-6 { p / cp - n } else { xyz[2].abs() - self.a * (1.0 - self.f) };
        (lam.to_degrees(), phi.to_degrees(), h)
    }

    /// Geocentric X, Y, Z (metres) to longitude, latitude (degrees), without the height.
    pub fn lon_lat(&self, xyz: [f64; 3]) -> (f64, f64) {
        let (lam, phi, _) = self.bowring(xyz);
        (lam.to_degrees(), phi.to_degrees())
    }

    /// Longitude, latitude (radians) and distance from the axis, by Bowring's (1976) closed form as
    /// PROJ's `cart` uses: for points within kilometres of the ellipsoid its error is far below a
    /// micrometre.
    fn bowring(&self, [x, y, z]: [f64; 3]) -> (f64, f64, f64) {
        let e2 = self.e2();
        let b = self.a * (1.0 - self.f);
        let ep2 = e2 / (1.0 - e2);
        let p = (x * x + y * y).sqrt();
        let theta = (z * self.a).atan2(p * b);
        let (st, ct) = theta.sin_cos();
        let phi = (z + ep2 * b * st * st * st).atan2(p - e2 * self.a * ct * ct * ct);
        (y.atan2(x), phi, p)
    }
}

/// A 7-parameter Helmert transformation of geocentric coordinates towards WGS 84, position-vector
/// convention (as PROJ's `+towgs84`): `X' = T + (1 + s·10⁻⁶)·R·X` with the small-angle rotation
/// matrix `R`. The inverse is the exact inverse matrix, so a round trip closes to rounding error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Helmert {
    /// tx, ty, tz (metres), rx, ry, rz (arc-seconds), s (parts per million), as given.
    params: [f64; 7],
    m: [[f64; 3]; 3],
    inv: [[f64; 3]; 3],
}

impl Helmert {
    /// A transformation from `+towgs84` parameters (a 3-parameter shift has zero rotations and scale).
    pub fn new(params: [f64; 7]) -> Helmert {
        let [_, _, _, rx, ry, rz, s] = params;
        let (rx, ry, rz) = (rx * ARCSEC, ry * ARCSEC, rz * ARCSEC);
        let k = 1.0 + s * 1e-6;
        let m = [[k, -rz * k, ry * k], [rz * k, k, -rx * k], [-ry * k, rx * k, k]];
        Helmert { params, m, inv: invert(&m) }
    }

    /// The parameters as given: tx, ty, tz, rx, ry, rz, s.
    pub fn params(&self) -> &[f64; 7] {
        &self.params
    }

    /// True for the 3-parameter (translation only) form.
    pub fn is_translation(&self) -> bool {
        self.params[3..].iter().all(|v| *v == 0.0)
    }

    /// Source datum to WGS 84.
    pub fn forward(&self, p: [f64; 3]) -> [f64; 3] {
        let t = &self.params;
        let r = mul(&self.m, p);
        [r[0] + t[0], r[1] + t[1], r[2] + t[2]]
    }

    /// WGS 84 to the source datum.
    pub fn inverse(&self, p: [f64; 3]) -> [f64; 3] {
        let t = &self.params;
        mul(&self.inv, [p[0] - t[0], p[1] - t[1], p[2] - t[2]])
    }
}

fn mul(m: &[[f64; 3]; 3], p: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * p[0] + m[0][1] * p[1] + m[0][2] * p[2],
        m[1][0] * p[0] + m[1][1] * p[1] + m[1][2] * p[2],
        m[2][0] * p[0] + m[2][1] * p[1] + m[2][2] * p[2],
    ]
}

/// Inverse of a 3×3 matrix by its adjugate (the matrices here are within 10⁻⁶ of the identity).
fn invert(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r1: usize, c1: usize, r2: usize, c2: usize| m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1];
    let adj = [
        [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
        [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
        [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
    ];
    let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
    adj.map(|row| row.map(|v| v / det))
}

/// `e·atanh(e·x)`, zero on a sphere.
fn eatanhe(x: f64, e: f64) -> f64 {
    if e == 0.0 { 0.0 } else { e * (e * x).atanh() }
}

/// tan χ of the conformal latitude χ from tan φ of the geodetic latitude (Karney 2011, eq. 7-9).
fn taupf(tau: f64, e: f64) -> f64 {
    if !tau.is_finite() {
        return tau;
    }
    let tau1 = 1f64.hypot(tau);
    let sig = eatanhe(tau / tau1, e).sinh();
    1f64.hypot(sig) * tau - sig * tau1
}

/// tan φ from tan χ: the inverse of [`taupf`] by Newton's method (Karney 2011, eq. 19-21), which
/// converges to machine precision in two or three steps.
fn tauf(taup: f64, e: f64) -> f64 {
    if e == 0.0 || !taup.is_finite() {
        return taup;
    }
    let e2m = 1.0 - e * e;
    let mut tau = if taup.abs() > 70.0 { taup * eatanhe(1.0, e).exp() } else { taup / e2m };
    let stol = 1.5e-9 * taup.abs().max(1.0);
    for _ in 0..5 {
        let taupa = taupf(tau, e);
        let dtau = (taup - taupa) * (1.0 + e2m * tau * tau) / (e2m * 1f64.hypot(tau) * 1f64.hypot(taupa));
        tau += dtau;
        if dtau.abs() < stol {
            break;
        }
    }
    tau
}

/// Longitude (difference) in degrees brought into -180..180; rounding overshoots of up to 1e-9
/// degree are clamped rather than wrapped to the other side.
pub(crate) fn wrap_degrees(lon: f64) -> f64 {
    if lon.abs() <= 180.0 + 1e-9 { lon.clamp(-180.0, 180.0) } else { lon - 360.0 * ((lon + 180.0) / 360.0).floor() }
}

/// sinh and cosh from one `exp` (absolute error ~1e-16 near 0, which the callers scale down).
fn sinh_cosh(x: f64) -> (f64, f64) {
    let e = x.exp();
    let inv = 1.0 / e;
    ((e - inv) * 0.5, (e + inv) * 0.5)
}

/// `x + Σ c[k-1]·sin(2kx)` for real `x`, by Clenshaw summation.
fn clenshaw_real(c: &[f64; 6], x: f64) -> f64 {
    let (s2, c2) = (2.0 * x).sin_cos();
    let a = 2.0 * c2;
    let (mut y1, mut y2) = (0.0, 0.0);
    for &ck in c.iter().rev() {
        (y2, y1) = (y1, ck + a * y1 - y2);
    }
    x + s2 * y1
}

/// `Σ c[k-1]·sin(2kζ)` for the complex `ζ = ξ + iη`, by Clenshaw summation; returns (real, imaginary).
fn clenshaw(c: &[f64; 6], xi: f64, eta: f64) -> (f64, f64) {
    let (s2, c2) = (2.0 * xi).sin_cos();
    let (sh2, ch2) = sinh_cosh(2.0 * eta);
    // 2·cos 2ζ
    let (ar, ai) = (2.0 * c2 * ch2, -2.0 * s2 * sh2);
    let (mut y1r, mut y1i, mut y2r, mut y2i) = (0.0, 0.0, 0.0, 0.0);
    for &ck in c.iter().rev() {
        let y0r = ck + ar * y1r - ai * y1i - y2r;
        let y0i = ar * y1i + ai * y1r - y2i;
        (y2r, y2i, y1r, y1i) = (y1r, y1i, y0r, y0i);
    }
    // sin 2ζ · y1
    let (sr, si) = (s2 * ch2, c2 * sh2);
    (sr * y1r - si * y1i, sr * y1i + si * y1r)
}

/// Transverse Mercator on an ellipsoid: Krüger's series to sixth order in the third flattening `n`
/// (Karney 2011, "Transverse Mercator with an accuracy of a few nanometers"), with the conformal
/// latitude by its sixth-order series too, as PROJ's default `tmerc` (Poder/Engsager) does. Within
/// 4,000 km of the central meridian it is exact to a few nanometres; UTM is this with `k0` 0.9996
/// and the zone's central meridian.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TransverseMercator {
    /// Longitude of the central meridian, degrees.
    pub lon0: f64,
    /// Latitude of origin, degrees.
    pub lat0: f64,
    /// Scale factor on the central meridian.
    pub k0: f64,
    /// False easting, metres.
    pub x0: f64,
    /// False northing, metres.
    pub y0: f64,
    /// Geodetic to conformal latitude, `χ = φ + Σ c[k-1]·sin(2kφ)`.
    to_conformal: [f64; 6],
    /// Conformal to geodetic latitude, `φ = χ + Σ c[k-1]·sin(2kχ)`.
    from_conformal: [f64; 6],
    /// k0 times the rectifying radius A.
    scale: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
    /// Northing of the latitude of origin on the central meridian (before the false northing).
    northing0: f64,
}

impl TransverseMercator {
    /// The projection on `ellipsoid` with the given parameters (degrees, metres).
    pub fn new(ellipsoid: &Ellipsoid, lon0: f64, lat0: f64, k0: f64, x0: f64, y0: f64) -> Self {
        let f = ellipsoid.f;
        let n = f / (2.0 - f);
        let (n2, n3) = (n * n, n * n * n);
        let (n4, n5, n6) = (n2 * n2, n2 * n3, n3 * n3);
        let a_rect = ellipsoid.a / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0 + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1_983_433.0 * n6 / 1_935_360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0 + 15061.0 * n5 / 26880.0 + 167_603.0 * n6 / 181_440.0,
            49561.0 * n4 / 161_280.0 - 179.0 * n5 / 168.0 + 6_601_661.0 * n6 / 7_257_600.0,
            34729.0 * n5 / 80640.0 - 3_418_889.0 * n6 / 1_995_840.0,
            212_378_941.0 * n6 / 319_334_400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0 + 96199.0 * n6 / 604_800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0 - 1_118_711.0 * n6 / 3_870_720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161_280.0 - 11.0 * n5 / 504.0 - 830_251.0 * n6 / 7_257_600.0,
            4583.0 * n5 / 161_280.0 - 108_847.0 * n6 / 3_991_680.0,
            20_648_693.0 * n6 / 638_668_800.0,
        ];
        // Krüger (Karney 2011, eq. 10-11; Krüger 1912, Kawase 2011).
        let to_conformal = [
            n * (-2.0
                + n * (2.0 / 3.0 + n * (4.0 / 3.0 + n * (-82.0 / 45.0 + n * (32.0 / 45.0 + n * 4642.0 / 4725.0))))),
            n2 * (5.0 / 3.0 + n * (-16.0 / 15.0 + n * (-13.0 / 9.0 + n * (904.0 / 315.0 + n * -1522.0 / 945.0)))),
            n3 * (-26.0 / 15.0 + n * (34.0 / 21.0 + n * (8.0 / 5.0 + n * -12686.0 / 2835.0))),
            n4 * (1237.0 / 630.0 + n * (-12.0 / 5.0 + n * -24832.0 / 14175.0)),
            n5 * (-734.0 / 315.0 + n * 109_598.0 / 31185.0),
            n6 * 444_337.0 / 155_925.0,
        ];
        let from_conformal = [
            n * (2.0 + n * (-2.0 / 3.0 + n * (-2.0 + n * (116.0 / 45.0 + n * (26.0 / 45.0 + n * -2854.0 / 675.0))))),
            n2 * (7.0 / 3.0 + n * (-8.0 / 5.0 + n * (-227.0 / 45.0 + n * (2704.0 / 315.0 + n * 2323.0 / 945.0)))),
            n3 * (56.0 / 15.0 + n * (-136.0 / 35.0 + n * (-1262.0 / 105.0 + n * 73814.0 / 2835.0))),
            n4 * (4279.0 / 630.0 + n * (-332.0 / 35.0 + n * -399_572.0 / 14175.0)),
            n5 * (4174.0 / 315.0 + n * -144_838.0 / 6237.0),
            n6 * 601_676.0 / 22275.0,
        ];
        let scale = k0 * a_rect;
        let chi0 = clenshaw_real(&to_conformal, lat0.to_radians());
        let northing0 = scale * (chi0 + clenshaw(&alpha, chi0, 0.0).0);
        TransverseMercator { lon0, lat0, k0, x0, y0, to_conformal, from_conformal, scale, alpha, beta, northing0 }
    }

    /// Longitude, latitude (degrees) to easting, northing (metres).
    pub fn forward(&self, lon: f64, lat: f64) -> Result<(f64, f64), &'static str> {
        let lam = wrap_degrees(lon - self.lon0).to_radians();
        let (sl, cl) = lam.sin_cos();
        let chi = clenshaw_real(&self.to_conformal, lat.to_radians());
        let (sc, cc) = chi.sin_cos();
        // ξ' = atan(tan χ / cos λ), η' = atanh(cos χ · sin λ)
        let xip = sc.atan2(cc * cl);
        let etap = (cc * sl).atanh();
        if cl < 0.0 || etap.is_nan() || etap.abs() > ETA_MAX {
            return Err("too far from the central meridian for transverse Mercator");
        }
        let (dxi, deta) = clenshaw(&self.alpha, xip, etap);
        Ok((self.x0 + self.scale * (etap + deta), self.y0 + self.scale * (xip + dxi) - self.northing0))
    }

    /// Easting, northing (metres) to longitude, latitude (degrees).
    pub fn inverse(&self, x: f64, y: f64) -> Result<(f64, f64), &'static str> {
        let xi = (y - self.y0 + self.northing0) / self.scale;
        let eta = (x - self.x0) / self.scale;
        if eta.is_nan() || eta.abs() > ETA_MAX {
            return Err("easting too far from the central meridian for transverse Mercator");
        }
        let (dxi, deta) = clenshaw(&self.beta, xi, eta);
        let (xip, etap) = (xi - dxi, eta - deta);
        let (sxip, cxip) = xip.sin_cos();
        let (shetap, _) = sinh_cosh(etap);
        // tan χ = sin ξ' / √(sinh² η' + cos² ξ'), tan λ = sinh η' / cos ξ'
        let chi = sxip.atan2((shetap * shetap + cxip * cxip).sqrt());
        let lam = shetap.atan2(cxip);
        let phi = clenshaw_real(&self.from_conformal, chi);
        Ok((wrap_degrees(self.lon0 + lam.to_degrees()), phi.to_degrees()))
    }
}

/// Mercator, on an ellipsoid or a sphere (Web Mercator is the spherical case with `a` 6378137).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mercator {
    /// Longitude of the central meridian, degrees.
    pub lon0: f64,
    /// Scale factor on the equator.
    pub k0: f64,
    /// False easting, metres.
    pub x0: f64,
    /// False northing, metres.
    pub y0: f64,
    /// Latitude of true scale when given as `+lat_ts` (degrees); `k0` then follows from it.
    pub lat_ts: Option<f64>,
    e: f64,
    /// k0 times a.
    scale: f64,
}

impl Mercator {
    /// The projection on `ellipsoid`; `lat_ts` (degrees), when given, replaces `k0` as in PROJ.
    pub fn new(ellipsoid: &Ellipsoid, lon0: f64, k0: f64, lat_ts: Option<f64>, x0: f64, y0: f64) -> Self {
        let e2 = ellipsoid.e2();
        let k0 = match lat_ts {
            Some(lat) => {
                let (s, c) = lat.to_radians().sin_cos();
                c / (1.0 - e2 * s * s).sqrt()
            }
            None => k0,
        };
        Mercator { lon0, k0, x0, y0, lat_ts, e: e2.sqrt(), scale: k0 * ellipsoid.a }
    }

    /// Longitude, latitude (degrees) to easting, northing (metres).
    pub fn forward(&self, lon: f64, lat: f64) -> Result<(f64, f64), &'static str> {
        if lat.is_nan() || lat.abs() >= 90.0 {
            return Err("a pole has no Mercator northing");
        }
        let psi = taupf(lat.to_radians().tan(), self.e).asinh();
        let lam = wrap_degrees(lon - self.lon0).to_radians();
        Ok((self.x0 + self.scale * lam, self.y0 + self.scale * psi))
    }

    /// Easting, northing (metres) to longitude, latitude (degrees).
    pub fn inverse(&self, x: f64, y: f64) -> (f64, f64) {
        let lam = (x - self.x0) / self.scale;
        let psi = (y - self.y0) / self.scale;
        let phi = tauf(psi.sinh(), self.e).atan();
        (wrap_degrees(self.lon0 + lam.to_degrees()), phi.to_degrees())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geocentric_round_trip() {
        let e = Ellipsoid::WGS84;
        for (lon, lat, h) in [(108.5, 12.7, 0.0), (-70.0, -45.0, 35.5), (0.0, 89.9999, -20.0), (179.0, 0.0, 1000.0)] {
            let (lon2, lat2, h2) = e.geodetic(e.geocentric(lon, lat, h));
            assert!((lon2 - lon).abs() < 1e-12 && (lat2 - lat).abs() < 1e-12, "{lon} {lat}: {lon2} {lat2}");
            assert!((h2 - h).abs() < 1e-6, "{h} -> {h2}");
        }
    }

    #[test]
    fn helmert_inverse_is_exact() {
        let h = Helmert::new([-191.9, -39.3, -111.45, 0.0093, -0.0198, 0.0043, 0.2529]);
        let p = [-1_943_000.123, 5_913_000.456, 1_393_000.789];
        let q = h.inverse(h.forward(p));
        for i in 0..3 {
            assert!((q[i] - p[i]).abs() < 1e-8, "{q:?} vs {p:?}");
        }
        assert!(!h.is_translation());
        assert!(Helmert::new([1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0]).is_translation());
    }

    #[test]
    fn conformal_latitude_inverts() {
        let e = Ellipsoid::WGS84.e2().sqrt();
        for lat in [-89.0, -45.0, 0.0, 12.7, 60.0, 89.999] {
            let tau = f64::tan(f64::to_radians(lat));
            let back = tauf(taupf(tau, e), e);
            assert!((back - tau).abs() <= 1e-14 * tau.abs().max(1.0), "{lat}: {back} vs {tau}");
        }
    }

    #[test]
    fn conformal_latitude_series_match_the_exact_formula() {
        let tm = TransverseMercator::new(&Ellipsoid::WGS84, 0.0, 0.0, 1.0, 0.0, 0.0);
        let e = Ellipsoid::WGS84.e2().sqrt();
        for i in 0..=180 {
            let phi = f64::to_radians(-89.5 + f64::from(i) * (179.0 / 180.0));
            let chi = taupf(phi.tan(), e).atan();
            let d1 = (clenshaw_real(&tm.to_conformal, phi) - chi).abs();
            let d2 = (clenshaw_real(&tm.from_conformal, chi) - phi).abs();
            // Agreement to an ulp or two of π/2: the series are exact at double precision.
            assert!(d1 < 5e-16 && d2 < 5e-16, "{phi}: {d1:e} {d2:e}");
        }
    }

    #[test]
    fn wraps_longitudes() {
        assert_eq!(wrap_degrees(190.0), -170.0);
        assert_eq!(wrap_degrees(-190.0), 170.0);
        assert_eq!(wrap_degrees(180.0), 180.0);
        assert_eq!(wrap_degrees(540.0), -180.0);
        assert_eq!(wrap_degrees(-180.000_000_000_1), -180.0);
    }

    #[test]
    fn transverse_mercator_origin_and_symmetry() {
        let tm = TransverseMercator::new(&Ellipsoid::WGS84, 105.0, 0.0, 0.9996, 500_000.0, 0.0);
        let (x, y) = tm.forward(105.0, 0.0).unwrap();
        assert!((x - 500_000.0).abs() < 1e-9 && y.abs() < 1e-9);
        let (xe, ye) = tm.forward(106.0, 10.0).unwrap();
        let (xw, yw) = tm.forward(104.0, 10.0).unwrap();
        assert!((xe - 500_000.0 + xw - 500_000.0).abs() < 1e-6 && (ye - yw).abs() < 1e-6);
        assert!(tm.forward(195.0, 0.0).is_err());
    }
}
