//! Terraform values as this provider sees them: msgpack-encoded `DynamicValue`s decoded into
//! [`rmpv::Value`] objects, with helpers that tell *null*, *unknown* and known values apart.
//!
//! ```text
//! object   msgpack map, attribute name -> value, every schema attribute present
//! null     msgpack nil
//! unknown  msgpack extension type 0 (Terraform writes fixext1 0x00)
//! number   msgpack int or float (Terraform may also send a decimal string for huge numbers)
//! ```

use rmpv::Value;

use crate::proto::tfplugin6::DynamicValue;

/// Terraform's "unknown value" marker: msgpack extension type 0.
pub fn unknown() -> Value {
    Value::Ext(0, vec![0])
}

/// Whether `value` is Terraform's unknown marker.
pub fn is_unknown(value: &Value) -> bool {
    matches!(value, Value::Ext(0, _))
}

/// Decodes a request's `DynamicValue`. An absent value or empty payload decodes as null.
pub fn decode(value: Option<&DynamicValue>) -> Result<Value, String> {
    let Some(value) = value else {
        return Ok(Value::Nil);
    };
    if !value.msgpack.is_empty() {
        return rmpv::decode::read_value(&mut value.msgpack.as_slice())
            .map_err(|e| format!("undecodable msgpack value: {e}"));
    }
    if !value.json.is_empty() {
        let json: serde_json::Value = serde_json::from_slice(&value.json)
            .map_err(|e| format!("undecodable JSON value: {e}"))?;
        return Ok(from_json(&json));
    }
    Ok(Value::Nil)
}

/// Encodes `value` as a msgpack `DynamicValue`.
pub fn encode(value: &Value) -> DynamicValue {
    let mut msgpack = Vec::new();
    rmpv::encode::write_value(&mut msgpack, value).expect("writing to a Vec cannot fail");
    DynamicValue {
        msgpack,
        json: Vec::new(),
    }
}

/// A JSON value (a stored state) as msgpack: objects become maps, numbers stay numbers.
pub fn from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(fields) => Value::Map(
            fields
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    }
}

/// The attribute `name` of object `value`; null when `value` is null or lacks it.
pub fn get<'a>(value: &'a Value, name: &str) -> &'a Value {
    static NIL: Value = Value::Nil;
    match value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
            .unwrap_or(&NIL),
        _ => &NIL,
    }
}

/// Sets attribute `name` of object `value` (which must be a map).
pub fn set(value: &mut Value, name: &str, new: Value) {
    let Value::Map(entries) = value else {
        panic!("set({name}) on a non-object value");
    };
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(name)) {
        Some((_, v)) => *v = new,
        None => entries.push((Value::from(name), new)),
    }
}

/// An object from `(name, value)` pairs.
pub fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// A known string, or None for null/unknown/other types.
pub fn as_str(value: &Value) -> Option<&str> {
    value.as_str()
}

/// A known number as u64 (Terraform numbers arrive as ints, floats or decimal strings).
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => i.as_u64(),
        Value::F64(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
        Value::F32(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
        Value::String(s) => s.as_str().and_then(|s| s.parse().ok()),
        _ => None,
    }
}

/// A known number as i64 (may be negative, so a negative count can be reported as such).
pub fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => i.as_i64(),
        Value::F64(f) if f.fract() == 0.0 => Some(*f as i64),
        Value::F32(f) if f.fract() == 0.0 => Some(*f as i64),
        Value::String(s) => s.as_str().and_then(|s| s.parse().ok()),
        _ => None,
    }
}

/// A known bool.
pub fn as_bool(value: &Value) -> Option<bool> {
    value.as_bool()
}

/// A known list of known strings.
pub fn as_strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A known map of known strings, sorted by key.
pub fn as_string_map(value: &Value) -> Option<std::collections::BTreeMap<String, String>> {
    value
        .as_map()?
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect()
}

/// A msgpack list of strings.
pub fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// A msgpack map of strings (keys in the iterator's order).
pub fn string_map<'a>(entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_round_trips_through_msgpack() {
        let value = object(vec![("id", unknown()), ("name", Value::from("a"))]);
        let decoded = decode(Some(&encode(&value))).unwrap();
        assert!(is_unknown(get(&decoded, "id")));
        assert_eq!(as_str(get(&decoded, "name")), Some("a"));
        assert_eq!(get(&decoded, "absent"), &Value::Nil);
    }

    #[test]
    fn numbers_arrive_in_every_encoding() {
        assert_eq!(as_u64(&Value::from(6)), Some(6));
        assert_eq!(as_u64(&Value::F64(6.0)), Some(6));
        assert_eq!(as_u64(&Value::from("1073741824")), Some(1 << 30));
        assert_eq!(as_u64(&Value::F64(6.5)), None);
        assert_eq!(as_u64(&unknown()), None);
    }

    #[test]
    fn json_state_decodes_like_msgpack() {
        let json = serde_json::json!({"id": "cl-1", "broker_count": 3, "tags": null});
        let value = from_json(&json);
        assert_eq!(as_str(get(&value, "id")), Some("cl-1"));
        assert_eq!(as_u64(get(&value, "broker_count")), Some(3));
        assert_eq!(get(&value, "tags"), &Value::Nil);
    }
}
