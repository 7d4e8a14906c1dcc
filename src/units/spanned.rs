//! Serde plumbing for the raw unit structs: every value keeps its position
//! in the file, and a mistake never stops the parse.
//!
//! serde stops at the first error, but a unit file's diagnostics list all
//! of its mistakes at once. So nothing here fails on a user's mistake:
//! - [`Val<T>`] reads any TOML value. What was expected becomes `Ok(T)`;
//!   anything else becomes `Err(Found)` ("found an integer"), reported
//!   later by the validator. Its span comes from toml's `Spanned` protocol.
//! - [`Table<T>`] reads a table into a serde-derived raw struct `T`
//!   (`#[serde(deny_unknown_fields)]`). Before `T` sees a key, a filter
//!   compares it with the field list serde generated for `T` (the
//!   `fields` argument of `deserialize_struct`): a key `T` does not have
//!   is set aside with its position, so one misspelt field does not hide
//!   the next. `T` only ever sees its own fields, and its derived
//!   `deny_unknown_fields` would catch a filter that let another through.
//!
//! toml's `Spanned` cannot be used directly: it fails on tables that have
//! no position of their own (`spec` when the file only has
//! `[spec.template]`), and inside `#[serde(flatten)]` (which buffers the
//! values and loses positions).

use super::diagnostic::Span;
use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess,
    SeqAccess, Visitor,
};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// The struct name and fields through which toml hands out a value's span
/// (`serde_spanned`'s protocol; a test checks them against `toml::Spanned`).
pub(crate) const SPANNED: &str = "$__serde_spanned_private_Spanned";
pub(crate) const SPANNED_START: &str = "$__serde_spanned_private_start";
pub(crate) const SPANNED_END: &str = "$__serde_spanned_private_end";
pub(crate) const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
/// The one key of the map toml hands out for a date-time value.
pub(crate) const DATETIME_FIELD: &str = "$__toml_private_datetime";

/// What was written where something else was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    String,
    Integer,
    Float,
    Boolean,
    Datetime,
    Array,
    Table,
}

impl Found {
    /// "a string", "an integer", ... for "expected X, found Y".
    pub fn describe(self) -> &'static str {
        match self {
            Found::String => "a string",
            Found::Integer => "an integer",
            Found::Float => "a float",
            Found::Boolean => "a boolean",
            Found::Datetime => "a date-time",
            Found::Array => "an array",
            Found::Table => "a table",
        }
    }

    /// A scalar that could have been meant as a string (`version = 2`).
    pub fn is_scalar(self) -> bool {
        matches!(
            self,
            Found::Integer | Found::Float | Found::Boolean | Found::Datetime
        )
    }
}

/// A value as written, with its position (`None` for a table that has no
/// header of its own); `Err` when it is not of the expected shape.
#[derive(Debug)]
pub struct Val<T> {
    pub span: Option<Span>,
    pub value: Result<T, Found>,
}

/// A key with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub span: Option<Span>,
}

/// A shape a TOML value may take; each `from_*` returns `None` when the
/// value is not of this shape. Compound values that do not fit are read
/// to their end, so the parse goes on after them.
pub trait Shape: Sized {
    /// "a string", for "expected a string, found an integer".
    const EXPECTED: &'static str;

    fn from_string(_: String) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    /// `first` is a key already read (its value not yet).
    fn from_map<'de, A: MapAccess<'de>>(
        first: Option<Key>,
        mut map: A,
    ) -> Result<Option<Self>, A::Error> {
        if first.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Shape for String {
    const EXPECTED: &'static str = "a string";
    fn from_string(s: String) -> Option<Self> {
        Some(s)
    }
}

impl Shape for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_i64(i: i64) -> Option<Self> {
        Some(i)
    }
}

impl Shape for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

/// A string or a number (a port, a quantity, an rlimit).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Shape for Scalar {
    const EXPECTED: &'static str = "a string or a number";
    fn from_string(s: String) -> Option<Self> {
        Some(Scalar::Str(s))
    }
    fn from_i64(i: i64) -> Option<Self> {
        Some(Scalar::Int(i))
    }
    fn from_f64(f: f64) -> Option<Self> {
        Some(Scalar::Float(f))
    }
}

/// An array; each element keeps its own position and shape.
impl<T: Shape> Shape for Vec<Val<T>> {
    const EXPECTED: &'static str = "an array";
    fn from_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Val<T>>()? {
            out.push(v);
        }
        Ok(Some(out))
    }
}

/// A table with keys of the user's choosing (`labels`, `env`), in file
/// order.
#[derive(Debug)]
pub struct Map<V>(pub Vec<(Key, Val<V>)>);

impl<V: Shape> Shape for Map<V> {
    const EXPECTED: &'static str = "a table";
    fn from_map<'de, A: MapAccess<'de>>(
        first: Option<Key>,
        mut map: A,
    ) -> Result<Option<Self>, A::Error> {
        let mut out = Vec::new();
        let mut next = first;
        loop {
            let key = match next.take() {
                Some(k) => k,
                None => match map.next_key::<Key>()? {
                    Some(k) => k,
                    None => break,
                },
            };
            let value = map.next_value::<Val<V>>()?;
            out.push((key, value));
        }
        Ok(Some(Map(out)))
    }
}

/// A table read into the raw struct `T`.
#[derive(Debug)]
pub struct Table<T> {
    pub value: T,
    /// The keys of `T`'s fields that were written, in file order.
    pub keys: Vec<Key>,
    /// The keys `T` does not have, with their values (a string, or what
    /// was found instead).
    pub unknown: Vec<(Key, Val<String>)>,
    /// `T`'s fields, as serde generated them.
    pub fields: &'static [&'static str],
}

impl<T> Table<T> {
    /// Where key `name` is written, if it is.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }
}

impl<T: DeserializeOwned> Shape for Table<T> {
    const EXPECTED: &'static str = "a table";
    fn from_map<'de, A: MapAccess<'de>>(
        first: Option<Key>,
        map: A,
    ) -> Result<Option<Self>, A::Error> {
        let mut keys = Vec::new();
        let mut unknown = Vec::new();
        let mut fields: &'static [&'static str] = &[];
        let value = T::deserialize(Fields {
            map,
            pending: first,
            keys: &mut keys,
            unknown: &mut unknown,
            fields: &mut fields,
        })?;
        Ok(Some(Table {
            value,
            keys,
            unknown,
            fields,
        }))
    }
}

/// Hands a table to a derived struct's visitor, keeping back the keys the
/// struct does not have (see the module docs).
struct Fields<'a, A> {
    map: A,
    pending: Option<Key>,
    keys: &'a mut Vec<Key>,
    unknown: &'a mut Vec<(Key, Val<String>)>,
    fields: &'a mut &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Fields<'_, A> {
    type Error = A::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        *self.fields = fields;
        visitor.visit_map(FilteredMap {
            map: self.map,
            pending: self.pending,
            keys: self.keys,
            unknown: self.unknown,
            fields,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "a raw unit table must be a struct with named fields",
        ))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct FilteredMap<'a, A> {
    map: A,
    pending: Option<Key>,
    keys: &'a mut Vec<Key>,
    unknown: &'a mut Vec<(Key, Val<String>)>,
    fields: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FilteredMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let key = match self.pending.take() {
                Some(k) => k,
                None => match self.map.next_key::<Key>()? {
                    Some(k) => k,
                    None => return Ok(None),
                },
            };
            if self.fields.contains(&key.name.as_str()) {
                let name: StringDeserializer<A::Error> = key.name.clone().into_deserializer();
                self.keys.push(key);
                return seed.deserialize(name).map(Some);
            }
            let value = self.map.next_value::<Val<String>>()?;
            self.unknown.push((key, value));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, T: Shape> Deserialize<'de> for Val<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, SPANNED_FIELDS, ValVisitor(PhantomData))
    }
}

/// Reads a value whether or not toml has a span for it.
struct ValVisitor<T>(PhantomData<T>);

/// Reads the value itself, in whatever shape it comes.
struct Lenient<T>(PhantomData<T>);

impl<'de, T: Shape> DeserializeSeed<'de> for Lenient<T> {
    type Value = Result<T, Found>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A table (or a date-time, which toml hands out as a one-key table).
fn read_map<'de, T: Shape, A: MapAccess<'de>>(
    first: Option<Key>,
    mut map: A,
) -> Result<Result<T, Found>, A::Error> {
    if first.as_ref().is_some_and(|k| k.name == DATETIME_FIELD) {
        map.next_value::<IgnoredAny>()?;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        return Ok(Err(Found::Datetime));
    }
    Ok(T::from_map(first, map)?.ok_or(Found::Table))
}

macro_rules! scalar_visits {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok($wrap(T::from_bool(b).ok_or(Found::Boolean)))
        }
        fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
            Ok($wrap(T::from_i64(i).ok_or(Found::Integer)))
        }
        fn visit_u64<E: de::Error>(self, u: u64) -> Result<Self::Value, E> {
            let v = i64::try_from(u).ok().and_then(T::from_i64);
            Ok($wrap(v.ok_or(Found::Integer)))
        }
        fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
            Ok($wrap(T::from_f64(f).ok_or(Found::Float)))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            self.visit_string(s.to_string())
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok($wrap(T::from_string(s).ok_or(Found::String)))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Ok($wrap(T::from_seq(seq)?.ok_or(Found::Array)))
        }
    };
}

impl<'de, T: Shape> Visitor<'de> for Lenient<T> {
    type Value = Result<T, Found>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    scalar_visits!(|v| v);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first = map.next_key::<Key>()?;
        read_map(first, map)
    }
}

fn unspanned<T>(value: Result<T, Found>) -> Val<T> {
    Val { span: None, value }
}

impl<'de, T: Shape> Visitor<'de> for ValVisitor<T> {
    type Value = Val<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }

    scalar_visits!(unspanned);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<T>, A::Error> {
        let first = map.next_key::<Key>()?;
        if first.as_ref().is_none_or(|k| k.name != SPANNED_START) {
            return Ok(unspanned(read_map(first, map)?));
        }
        // The spanned protocol: start, end, then the value itself.
        let start: usize = map.next_value()?;
        let mut end = start;
        let mut value = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key.name.as_str() {
                SPANNED_END => end = map.next_value()?,
                SPANNED_VALUE => value = Some(map.next_value_seed(Lenient::<T>(PhantomData))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let value = value.ok_or_else(|| de::Error::missing_field(SPANNED_VALUE))?;
        Ok(Val {
            span: Some(Span::new(start, end)),
            value,
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(Key {
            name: s.to_string(),
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (mut start, mut end, mut name) = (0, 0, None);
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                SPANNED_START => start = map.next_value()?,
                SPANNED_END => end = map.next_value()?,
                SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Key {
            name: name.ok_or_else(|| de::Error::missing_field(SPANNED_VALUE))?,
            span: Some(Span::new(start, end)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: Option<Val<i64>>,
        b: Option<Val<Vec<Val<String>>>>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: Option<Val<String>>,
        inner: Option<Val<Table<Inner>>>,
        list: Option<Val<Vec<Val<Table<Inner>>>>>,
    }

    fn parse(text: &str) -> Val<Table<Outer>> {
        Val::deserialize(toml::Deserializer::new(text)).unwrap()
    }

    fn at(text: &str, span: Option<Span>) -> &str {
        let s = span.expect("a span");
        &text[s.start..s.end]
    }

    #[test]
    fn the_markers_are_tomls() {
        // toml::Spanned asks for exactly these names; if an upgrade changes
        // them, spans disappear and this fails first.
        #[derive(Default)]
        struct Seen(&'static str, &'static [&'static str]);
        impl<'de> Deserializer<'de> for &mut Seen {
            type Error = de::value::Error;
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                name: &'static str,
                fields: &'static [&'static str],
                _v: V,
            ) -> Result<V::Value, Self::Error> {
                (self.0, self.1) = (name, fields);
                Err(de::Error::custom("names only"))
            }
            fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
                Err(de::Error::custom("names only"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut seen = Seen::default();
        let _ = toml::Spanned::<String>::deserialize(&mut seen);
        assert_eq!((seen.0, seen.1), (SPANNED, SPANNED_FIELDS));
        let dt: Val<String> =
            Val::deserialize(toml::de::ValueDeserializer::new("1979-05-27")).unwrap();
        assert_eq!(dt.value, Err(Found::Datetime));
    }

    #[test]
    fn every_value_keeps_its_span_and_mistakes_do_not_stop_the_parse() {
        let text = "name = 3\nbogus = \"x\"\n[inner]\na = \"two\"\nb = [\"x\", 4]\nextra = 1\n";
        let root = parse(text);
        let t = root.value.as_ref().unwrap();
        assert_eq!(t.fields, ["name", "inner", "list"]);
        let name = t.value.name.as_ref().unwrap();
        assert_eq!(name.value, Err(Found::Integer));
        assert_eq!(at(text, name.span), "3");
        assert_eq!(t.unknown[0].0.name, "bogus");
        assert_eq!(at(text, t.unknown[0].0.span), "bogus");
        assert_eq!(t.unknown[0].1.value.as_deref(), Ok("x"));
        let inner = t.value.inner.as_ref().unwrap();
        assert!(at(text, inner.span).starts_with("[inner]\na = "));
        let inner = inner.value.as_ref().unwrap();
        assert_eq!(inner.value.a.as_ref().unwrap().value, Err(Found::String));
        let b = inner.value.b.as_ref().unwrap().value.as_ref().unwrap();
        assert_eq!(b[0].value.as_deref(), Ok("x"));
        assert_eq!(b[1].value, Err(Found::Integer));
        assert_eq!(at(text, b[1].span), "4");
        assert_eq!(inner.unknown[0].0.name, "extra");
        assert_eq!(at(text, inner.key("a").unwrap().span), "a");
    }

    #[test]
    fn implicit_tables_and_arrays_of_tables() {
        let text = "[inner.deeper]\nx = 1\n[[list]]\na = 1\n[[list]]\nz = 2\n";
        let root = parse(text);
        let t = root.value.unwrap();
        // `inner` has no header of its own: no span, but its key has one.
        let inner = t.value.inner.as_ref().unwrap();
        assert_eq!(inner.span, None);
        assert_eq!(at(text, t.key("inner").unwrap().span), "inner");
        assert_eq!(inner.value.as_ref().unwrap().unknown[0].0.name, "deeper");
        let list = t.value.list.unwrap().value.unwrap();
        assert_eq!(list.len(), 2);
        assert!(at(text, list[1].span).starts_with("[[list]]"));
        let second = list[1].value.as_ref().unwrap();
        assert_eq!(second.unknown[0].0.name, "z");
    }

    #[test]
    fn a_scalar_where_a_table_is_expected() {
        let root = parse("inner = 3\nlist = \"x\"\n");
        let t = root.value.unwrap();
        assert_eq!(t.value.inner.unwrap().value.err(), Some(Found::Integer));
        assert_eq!(t.value.list.unwrap().value.err(), Some(Found::String));
    }
}
