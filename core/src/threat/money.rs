//! Amounts and currencies in the arguments of a TRANSFER_VALUE call.
//!
//! The classifier knows a call moves money from its words (`create_refund`,
//! `POST /v1/payments`, "Pay now", see `classify/lexicon.rs` and
//! `classify/http.rs`); this reads *how much*. An amount is a number, or a
//! numeric string (`"25.00"`, `"$25"`, `"25 EUR"`, `"1,250.50"`), under a
//! key whose last word names money: `amount`, `total`, `price`,
//! `notional`, `value` (the last only beside a currency key, as in
//! PayPal's `{"currency_code": "USD", "value": "10.00"}`), `cost`, `sum`,
//! `subtotal`. Its currency is a sibling key whose words hold `currency`
//! (`currency`, `currency_code`, `currencyCode`), a symbol or code in the
//! string itself, or the nearest currency key of an enclosing object.
//!
//! When several amounts are present and some are totals (`total`,
//! `amount_total`, `itemTotal`), the largest total per currency is the
//! call's amount; otherwise amounts are added (line items). Integer
//! amounts of servers that count in minor units (Stripe's cents) are
//! divided by 100 when the policy names the server so.

use std::collections::BTreeMap;

use serde_json::Value;

/// Fixed point: millionths of a currency unit.
pub const SCALE: i128 = 1_000_000;

/// An amount of one currency, in millionths.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money {
    /// Upper-case ISO code (`USD`), or `?` when the call names none.
    pub currency: String,
    pub micros: i128,
}

impl Money {
    /// `12.50 USD`.
    pub fn show(&self) -> String {
        show(self.micros, &self.currency)
    }
}

/// An amount in millionths, shown with the decimals it needs (at least 2).
pub fn show(micros: i128, currency: &str) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let whole = m / SCALE as u128;
    let mut frac = format!("{:06}", m % SCALE as u128);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{whole}.{frac} {currency}")
}

/// Deepest nesting read and most amounts kept.
const MAX_DEPTH: usize = 12;
const MAX_AMOUNTS: usize = 256;

/// The call's amounts, one per currency (sorted), or empty when no amount
/// could be read. `minor_units`: integers are in hundredths.
pub fn amounts(args: &Value, minor_units: bool) -> Vec<Money> {
    let mut found = Vec::new();
    walk(args, None, 0, minor_units, &mut found);
    let mut totals: BTreeMap<String, i128> = BTreeMap::new();
    let mut sums: BTreeMap<String, i128> = BTreeMap::new();
    for (cur, micros, total) in found {
        if total {
            let t = totals.entry(cur).or_insert(0);
            *t = (*t).max(micros);
        } else {
            *sums.entry(cur).or_insert(0) += micros;
        }
    }
    let mut out = BTreeMap::new();
    for (cur, m) in sums {
        out.insert(cur, m);
    }
    for (cur, m) in totals {
        out.insert(cur, m);
    }
    out.into_iter().map(|(currency, micros)| Money { currency, micros }).collect()
}

fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// (is money, is a total) for a key; `value` counts only beside a currency.
fn money_key(key: &str, has_currency: bool) -> Option<bool> {
    let w = words(key);
    let last = w.last()?.as_str();
    let total = w.iter().any(|x| x == "total" || x == "subtotal");
    match last {
        "amount" | "total" | "price" | "notional" | "cost" | "sum" | "subtotal" | "amt" => Some(total),
        "value" if has_currency => Some(total),
        _ => None,
    }
}

fn currency_of(map: &serde_json::Map<String, Value>) -> Option<String> {
    map.iter().find_map(|(k, v)| {
        let w = words(k);
        (w.iter().any(|x| x == "currency") && !w.iter().any(|x| x == "symbol"))
            .then(|| v.as_str().and_then(code))
            .flatten()
    })
}

fn code(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

fn walk(v: &Value, outer: Option<&str>, depth: usize, minor: bool, out: &mut Vec<(String, i128, bool)>) {
    if depth > MAX_DEPTH || out.len() >= MAX_AMOUNTS {
        return;
    }
    match v {
        Value::Object(map) => {
            let here = currency_of(map);
            let cur = here.as_deref().or(outer);
            for (k, x) in map {
                if let Some(total) = money_key(k, here.is_some()) {
                    let parsed = match x {
                        Value::Number(n) => number(n, minor).map(|m| (None, m)),
                        Value::String(s) => parse_text(s),
                        _ => None,
                    };
                    if let Some((c, m)) = parsed {
                        let c = c.or(cur.map(str::to_owned)).unwrap_or_else(|| "?".to_owned());
                        out.push((c, m, total));
                        continue;
                    }
                }
                walk(x, cur, depth + 1, minor, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                walk(x, outer, depth + 1, minor, out);
            }
        }
        _ => {}
    }
}

fn number(n: &serde_json::Number, minor: bool) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        let i = i128::from(i) * SCALE;
        return Some(if minor { i / 100 } else { i });
    }
    let f = n.as_f64()?;
    (f.is_finite() && f.abs() < 1e15).then(|| (f * SCALE as f64).round() as i128)
}

const SYMBOLS: &[(&str, &str)] =
    &[("US$", "USD"), ("$", "USD"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"), ("₹", "INR"), ("CHF", "CHF")];

/// `"25"`, `"25.50"`, `"$1,250.50"`, `"25 EUR"`, `"EUR 25"`, `"-3"`.
pub fn parse_text(s: &str) -> Option<(Option<String>, i128)> {
    let mut t = s.trim();
    let mut cur = None;
    for (sym, c) in SYMBOLS {
        if let Some(rest) = t.strip_prefix(sym) {
            t = rest.trim_start();
            cur = Some((*c).to_owned());
            break;
        }
    }
    if let (None, Some((a, b))) = (&cur, t.split_once(' ')) {
        if let Some(c) = code(b) {
            cur = Some(c);
            t = a;
        } else if let Some(c) = code(a) {
            cur = Some(c);
            t = b.trim();
        }
    }
    decimal(t).map(|m| (cur, m))
}

/// A plain decimal with optional `,` thousands separators.
fn decimal(t: &str) -> Option<i128> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let t: String = t.chars().filter(|&c| c != ',').collect();
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() || whole.len() > 18 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut m: i128 = whole.parse::<i128>().ok()? * SCALE;
    let mut scale = SCALE / 10;
    for b in frac.bytes().take(6) {
        m += i128::from(b - b'0') * scale;
        scale /= 10;
    }
    Some(if neg { -m } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(args: Value, minor: bool) -> Vec<String> {
        amounts(&args, minor).iter().map(Money::show).collect()
    }

    #[test]
    fn real_shapes() {
        // Stripe: minor units, currency beside.
        assert_eq!(shown(json!({"amount": 2500, "currency": "usd", "customer": "cus_1"}), true), ["25.00 USD"]);
        // PayPal: {currency_code, value}.
        assert_eq!(
            shown(json!({"purchase_units": [{"amount": {"currency_code": "EUR", "value": "10.50"}}]}), false),
            ["10.50 EUR"]
        );
        // PayPal create_order: totals win over item costs.
        assert_eq!(
            shown(
                json!({"currencyCode": "USD", "items": [{"itemCost": 10, "itemTotal": 10}, {"itemCost": 5, "itemTotal": 15}]}),
                false
            ),
            ["15.00 USD"]
        );
        // Alpaca: notional in dollars, no currency.
        assert_eq!(shown(json!({"symbol": "AAPL", "notional": "1,250.5"}), false), ["1250.50 ?"]);
        // Text with symbols and codes.
        assert_eq!(shown(json!({"price": "$25"}), false), ["25.00 USD"]);
        assert_eq!(shown(json!({"amount": "25 eur"}), false), ["25.00 EUR"]);
        assert_eq!(shown(json!({"amount": "GBP 3.999999"}), false), ["3.999999 GBP"]);
        assert_eq!(shown(json!({"amount": 0.1}), false), ["0.10 ?"]);
    }

    #[test]
    fn not_money() {
        for args in [
            json!({"quantity": 3, "price": "price_1MoBy5LkdIwHu7ix"}),
            json!({"value": "10", "name": "x"}),
            json!({"amount_type": "fixed", "payment_intent": "pi_1"}),
            json!({"amount": "lots"}),
            json!({"amount": "1e400"}),
            json!({"amount": true}),
        ] {
            assert!(amounts(&args, false).is_empty(), "{args}");
        }
    }

    #[test]
    fn line_items_add_up_per_currency() {
        let a = shown(
            json!({"lines": [{"amount": "5", "currency": "USD"}, {"amount": "7", "currency": "USD"}, {"amount": "1", "currency": "EUR"}]}),
            false,
        );
        assert_eq!(a, ["1.00 EUR", "12.00 USD"]);
    }

    #[test]
    fn words_split_like_keys() {
        assert_eq!(words("itemTotal"), ["item", "total"]);
        assert_eq!(words("currency_code"), ["currency", "code"]);
        assert_eq!(words("unit-amount"), ["unit", "amount"]);
    }
}
