//! Coordinates moved by keyed noise within a radius in metres: a point,
//! or a latitude or a longitude on its own.

use rand::Rng;

use super::super::{MaskError, Masker, Seeder};

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

/// Decimals written after the point in `t`.
fn decimals(t: &str) -> usize {
    t.split_once('.').map(|(_, f)| f.chars().take_while(|c| c.is_ascii_digit()).count()).unwrap_or(0)
}

fn number(t: &str) -> Result<f64, MaskError> {
    let x: f64 = t.trim().parse().map_err(|_| MaskError("not a coordinate".into()))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(MaskError("not a coordinate".into()))
    }
}

/// Wraps a longitude into [-180, 180].
fn wrap_lon(x: f64) -> f64 {
    let y = (x + 180.0).rem_euclid(360.0) - 180.0;
    if y == -180.0 && x > 0.0 {
        180.0
    } else {
        y
    }
}

/// Which coordinate a [`Coordinate`] masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Latitude,
    Longitude,
}

/// A latitude or longitude moved by up to `radius` metres (a longitude's
/// degrees counted as at the equator, where they are longest, so it never
/// moves more than the radius), with the original's decimals.
pub struct Coordinate {
    pub axis: Axis,
    pub radius: f64,
}
impl Masker for Coordinate {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let x = number(v)?;
        let mut rng = s.rng(v.as_bytes());
        let delta = rng.random_range(-self.radius..=self.radius) / METRES_PER_DEGREE;
        let y = match self.axis {
            Axis::Latitude if !(-90.0..=90.0).contains(&x) => return Err(MaskError("latitude out of range".into())),
            Axis::Latitude => (x + delta).clamp(-90.0, 90.0),
            Axis::Longitude => wrap_lon(x + delta),
        };
        let d = decimals(v.trim());
        Ok(Some(format!("{y:.d$}")))
    }
}

/// A `point` `(x,y)` (x the longitude, y the latitude) moved to a keyed
/// place within `radius` metres, uniformly over the disc.
pub struct GeoPoint {
    pub radius: f64,
}
impl Masker for GeoPoint {
    fn mask(&self, v: &str, s: &Seeder) -> Result<Option<String>, MaskError> {
        let bad = || MaskError("not a point (x,y)".into());
        let body = v.trim().strip_prefix('(').and_then(|b| b.strip_suffix(')')).ok_or_else(bad)?;
        let (xs, ys) = body.split_once(',').ok_or_else(bad)?;
        let (lon, lat) = (number(xs)?, number(ys)?);
        if !(-90.0..=90.0).contains(&lat) {
            return Err(MaskError("latitude out of range".into()));
        }
        let mut rng = s.rng(v.as_bytes());
        let angle = rng.random_range(0.0..std::f64::consts::TAU);
        let dist = self.radius * rng.random_range(0.0..=1.0f64).sqrt();
        let dlat = dist * angle.sin() / METRES_PER_DEGREE;
        let cos = lat.to_radians().cos().max(1e-6);
        let dlon = dist * angle.cos() / (METRES_PER_DEGREE * cos);
        let (x, y) = (wrap_lon(lon + dlon), (lat + dlat).clamp(-90.0, 90.0));
        // Round to a micro-degree (about 11 cm): the digits past it are noise.
        let round = |z: f64| (z * 1e6).round() / 1e6;
        Ok(Some(format!("({},{})", round(x), round(y))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskKey;

    #[test]
    fn noise_stays_within_the_radius() {
        let k = MaskKey::from_material(b"geo-test-key-0123456789abcdef").unwrap();
        let s = k.seeder("d", "geo");
        let p = GeoPoint { radius: 500.0 };
        for i in 0..500 {
            let v = format!("({},{})", 4.0 + f64::from(i) / 1000.0, 52.0 + f64::from(i) / 1000.0);
            let out = p.mask(&v, &s).unwrap().unwrap();
            let body = &out[1..out.len() - 1];
            let (x, y) = body.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            let dy = (y - (52.0 + f64::from(i) / 1000.0)) * METRES_PER_DEGREE;
            let dx = (x - (4.0 + f64::from(i) / 1000.0)) * METRES_PER_DEGREE * y.to_radians().cos();
            assert!((dx * dx + dy * dy).sqrt() < 501.0, "{v} -> {out}");
        }
        let lat = Coordinate { axis: Axis::Latitude, radius: 1000.0 };
        let out: f64 = lat.mask("89.99990", &s).unwrap().unwrap().parse().unwrap();
        assert!(out <= 90.0);
        assert_eq!(lat.mask("52.3702", &s).unwrap().unwrap().split('.').nth(1).unwrap().len(), 4);
        let lon = Coordinate { axis: Axis::Longitude, radius: 1000.0 };
        let out: f64 = lon.mask("179.999", &s).unwrap().unwrap().parse().unwrap();
        assert!((-180.0..=180.0).contains(&out));
        assert!(lat.mask("91", &s).is_err() && p.mask("(1,2", &s).is_err());
    }
}
