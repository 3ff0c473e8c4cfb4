//! Exchange rates as integers: units of a currency per 1 USD, scaled by 10^8. No floats.

pub const SCALE: i128 = 100_000_000;

/// "0.9234" -> 92_340_000. At most 8 decimals, strictly positive.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || frac.len() > 8
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<8}").parse().ok()?
    };
    let v = int.checked_mul(SCALE as i64)?.checked_add(frac)?;
    (v > 0).then_some(v)
}

/// 92_340_000 -> "0.92340000".
pub fn format(v: i64) -> String {
    format!("{}.{:08}", v / SCALE as i64, v % SCALE as i64)
}

/// Rate from `from` to `to` (units of `to` per unit of `from`, scaled), given both per USD.
pub fn cross(from_per_usd: i64, to_per_usd: i64) -> i64 {
    (to_per_usd as i128 * SCALE / from_per_usd as i128) as i64
}

/// The customer's rate after the spread (in basis points), rounded down.
pub fn with_spread(mid: i64, spread_bps: i64) -> i64 {
    (mid as i128 * (10_000 - spread_bps) as i128 / 10_000) as i64
}

/// Convert `amount` minor units of a currency with exponent `from_exp` at `rate` into minor
/// units of a currency with exponent `to_exp`, rounded down. `None` on overflow.
pub fn convert(amount: i64, rate: i64, from_exp: u8, to_exp: u8) -> Option<i64> {
    let num = (amount as i128)
        .checked_mul(rate as i128)?
        .checked_mul(10i128.pow(to_exp as u32))?;
    let den = SCALE * 10i128.pow(from_exp as u32);
    i64::try_from(num / den).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        assert_eq!(parse("0.9234"), Some(92_340_000));
        assert_eq!(parse("155.12"), Some(15_512_000_000));
        assert_eq!(parse("1"), Some(100_000_000));
        assert_eq!(format(92_340_000), "0.92340000");
        for bad in ["", "-1", "0", "1.123456789", "1e3", "abc", ".5", "1.2.3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn conversions_round_down_in_minor_units() {
        let usd = parse("1").unwrap();
        let eur = parse("0.9234").unwrap();
        let jpy = parse("155.12").unwrap();
        // 100.00 USD -> EUR at mid: 92.34 EUR
        assert_eq!(convert(10_000, cross(usd, eur), 2, 2), Some(9_234));
        // 50 bps spread: 92.3400 * 0.995 = 91.8783 -> 91.87
        assert_eq!(
            convert(10_000, with_spread(cross(usd, eur), 50), 2, 2),
            Some(9_187)
        );
        // 100.00 USD -> JPY (exponent 0): 15512 yen
        assert_eq!(convert(10_000, cross(usd, jpy), 2, 0), Some(15_512));
        // 1000 JPY -> USD: 6.44 USD (6.4466 rounded down)
        assert_eq!(convert(1_000, cross(jpy, usd), 0, 2), Some(644));
        assert_eq!(convert(i64::MAX, cross(usd, jpy), 2, 0), None);
    }
}
