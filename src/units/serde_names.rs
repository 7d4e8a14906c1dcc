//! The names serde generated for a struct's fields and an enum's variants,
//! read by asking the derived `Deserialize` impl to deserialize from a
//! deserializer that only records what it is asked for. The unit file
//! schema's "expected one of" lists and did-you-mean candidates come from
//! here, so they cannot drift from the types.

use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};

/// The field names serde generated for the struct `T`, in declaration
/// order: the schema's own "expected one of" list.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = Names::default();
    let _ = T::deserialize(&mut names);
    names.fields
}

/// The variant names serde generated for the enum `T`.
pub fn variants_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = Names::default();
    let _ = T::deserialize(&mut names);
    names.variants
}

/// A deserializer that only records the names serde asks it for.
#[derive(Default)]
struct Names {
    fields: &'static [&'static str],
    variants: &'static [&'static str],
}

impl<'de> Deserializer<'de> for &mut Names {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.fields = fields;
        Err(de::Error::custom("names only"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.variants = variants;
        Err(de::Error::custom("names only"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map identifier ignored_any
    }
}

/// Reads `text` as the enum `T` by its serde variant names
/// (`"OnFailure"` -> `RestartPolicy::OnFailure`).
pub fn parse_variant<T: DeserializeOwned>(text: &str) -> Option<T> {
    let d: de::value::StrDeserializer<de::value::Error> = text.into_deserializer();
    T::deserialize(d).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        a: u32,
        #[serde(rename = "bee")]
        b: u32,
    }

    #[test]
    fn names_from_serde() {
        assert_eq!(fields_of::<Two>(), ["a", "bee"]);
        assert_eq!(
            variants_of::<crate::api::RestartPolicy>(),
            ["Always", "OnFailure", "Never"]
        );
        assert_eq!(
            parse_variant::<crate::api::RestartPolicy>("Never"),
            Some(crate::api::RestartPolicy::Never)
        );
        assert_eq!(parse_variant::<crate::api::RestartPolicy>("never"), None);
    }
}
