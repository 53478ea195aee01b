//! The 18-element config array (the browser fingerprint, spec 3.2) and its three static JSON
//! slices (spec 3.3 step 2).

use serde_json::{Number, Value};

/// The config array the proof of work hashes, one field per index (spec 3.2, PY HEAD layout).
///
/// Indices 3 (the nonce) and 9 (the second dynamic field) change on every iteration and are
/// written by the solver; [`ConfigArray::dynamic_start`] is index 9's initial value. The
/// server checks none of the other fields (spec 3.6); they only have to look like a browser.
/// Build one with [`FingerprintTable::build`](super::FingerprintTable::build), or fill the
/// fields directly (the test vectors of spec 3.7 do).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigArray {
    /// Index 0: screen width + height.
    pub screen: u32,
    /// Index 1: the browser date string, `Wed Jan 07 2026 12:00:00 GMT+0800 (CST)`.
    pub date: String,
    /// Index 2: `performance.memory.jsHeapSizeLimit`.
    pub heap_limit: u64,
    /// Index 4: the user agent the request is sent with.
    pub user_agent: String,
    /// Index 5: a script URL of the page.
    pub script: String,
    /// Index 6: the deployment id; `None` (JSON `null`) at PY HEAD.
    pub dpl: Option<String>,
    /// Index 7: `navigator.language`.
    pub language: String,
    /// Index 8: `navigator.languages`, comma-joined.
    pub languages: String,
    /// Index 9's initial value (PY HEAD: random 2..=10); see [`JRule`](super::JRule).
    pub dynamic_start: u32,
    /// Index 10: a navigator probe `name−value` (U+2212 MINUS SIGN between them).
    pub navigator_probe: String,
    /// Index 11: a `document` key.
    pub document_key: String,
    /// Index 12: a `window` key.
    pub window_key: String,
    /// Index 13: `performance.now()` in milliseconds.
    pub perf_now: f64,
    /// Index 14: a uuid4.
    pub uuid: String,
    /// Index 15: an empty string in every known client.
    pub empty: String,
    /// Index 16: `navigator.hardwareConcurrency`.
    pub hardware_concurrency: u32,
    /// Index 17: `performance.timeOrigin` in milliseconds (now − index 13).
    pub time_origin: f64,
}

/// The three static slices of the compact JSON around the two dynamic numbers:
/// `json = a ‖ decimal(i) ‖ b ‖ decimal(j) ‖ d` (spec 3.3 step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slices {
    /// `[` + indices 0..3 + `,`.
    pub(crate) a: Vec<u8>,
    /// `,` + indices 4..9 + `,`.
    pub(crate) b: Vec<u8>,
    /// `,` + indices 10..18 + `]`.
    pub(crate) d: Vec<u8>,
}

// === impl ConfigArray ===

impl ConfigArray {
    /// The compact JSON of the array with index 3 = `i` and index 9 = `j`, exactly the bytes
    /// the solver base64-encodes for that iteration.
    ///
    /// Strings are raw UTF-8 (Python's `ensure_ascii=False`), floats shortest round-trip;
    /// a non-finite float is written as `null`.
    pub fn to_json(&self, i: u64, j: u64) -> String {
        let s = self.slices();
        let mut out = Vec::with_capacity(s.a.len() + s.b.len() + s.d.len() + 40);
        out.extend_from_slice(&s.a);
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(&s.b);
        out.extend_from_slice(j.to_string().as_bytes());
        out.extend_from_slice(&s.d);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub(crate) fn slices(&self) -> Slices {
        let a = join(&[
            Value::from(self.screen),
            Value::from(self.date.as_str()),
            Value::from(self.heap_limit),
        ]);
        let b = join(&[
            Value::from(self.user_agent.as_str()),
            Value::from(self.script.as_str()),
            self.dpl.as_deref().map_or(Value::Null, Value::from),
            Value::from(self.language.as_str()),
            Value::from(self.languages.as_str()),
        ]);
        let d = join(&[
            Value::from(self.navigator_probe.as_str()),
            Value::from(self.document_key.as_str()),
            Value::from(self.window_key.as_str()),
            float(self.perf_now),
            Value::from(self.uuid.as_str()),
            Value::from(self.empty.as_str()),
            Value::from(self.hardware_concurrency),
            float(self.time_origin),
        ]);
        Slices {
            a: [b"[".as_slice(), a.as_bytes(), b","].concat(),
            b: [b",".as_slice(), b.as_bytes(), b","].concat(),
            d: [b",".as_slice(), d.as_bytes(), b"]"].concat(),
        }
    }
}

/// Compact JSON of the values, comma-separated, without brackets.
fn join(values: &[Value]) -> String {
    values.iter().map(Value::to_string).collect::<Vec<_>>().join(",")
}

/// A float in shortest round-trip form (`12345.5`, `12345.0`); `null` if not finite.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_python_repr_shape() {
        assert_eq!(float(12345.5).to_string(), "12345.5");
        assert_eq!(float(12345.0).to_string(), "12345.0");
        assert_eq!(float(1767758400000.25).to_string(), "1767758400000.25");
        assert_eq!(float(f64::NAN).to_string(), "null");
    }
}
