//! Embeddings on the wire: base64 of the float32s in little-endian order, 4 bytes each. A 384-wide vector
//! is 2,048 characters, where JSON numbers took ~3,500, and neither end formats or parses a number per
//! dimension (that was a tenth of the plumbing's CPU; see `murmur-bench plumbing`). Reading also accepts the
//! JSON array of numbers that version 1 of `comments.enriched` carried.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(vector: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    serializer.serialize_str(&STANDARD.encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
    deserializer.deserialize_any(PackedOrList)
}

struct PackedOrList;

impl<'de> Visitor<'de> for PackedOrList {
    type Value = Vec<f32>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("base64 of little-endian float32s, or a list of numbers")
    }

    fn visit_str<E: de::Error>(self, packed: &str) -> Result<Vec<f32>, E> {
        let bytes = STANDARD.decode(packed).map_err(|e| E::custom(format!("embedding: {e}")))?;
        if bytes.len() % 4 != 0 {
            return Err(E::custom(format!("embedding: {} bytes are not whole float32s", bytes.len())));
        }
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
        let mut vector = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(x) = seq.next_element::<f32>()? {
            vector.push(x);
        }
        Ok(vector)
    }
}

#[cfg(test)]
mod tests {
    use crate::Enrichment;

    fn enrichment(embedding: Vec<f32>) -> Enrichment {
        Enrichment::embedding_only("m", embedding)
    }

    #[test]
    fn multilingual_vectors_travel_packed_and_are_absent_when_not_made() {
        let plain = serde_json::to_value(enrichment(vec![1.0])).expect("serialise");
        assert!(plain.get("multilingual").is_none(), "absent, not null: {plain}");
        let mut with = enrichment(vec![1.0]);
        with.multilingual = Some(crate::MultilingualEmbedding { model: "e5".into(), vector: vec![0.6, -0.8, 1e-30] });
        let json = serde_json::to_value(&with).expect("serialise");
        assert!(json["multilingual"]["vector"].is_string(), "packed: {json}");
        let back: Enrichment = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, with);
    }

    #[test]
    fn vectors_round_trip_bit_for_bit_as_base64() {
        let vector = vec![0.5, -1.0, f32::MIN_POSITIVE, 1e-30, -0.0, 0.123_456_79, f32::MAX];
        let json = serde_json::to_value(enrichment(vector.clone())).expect("serialise");
        assert!(json["embedding"].is_string(), "packed: {json}");
        let back: Enrichment = serde_json::from_value(json).expect("deserialise");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.embedding), bits(&vector));
        let empty = serde_json::to_value(enrichment(Vec::new())).expect("serialise");
        assert_eq!(empty["embedding"], "", "an empty vector is an empty string");
    }

    #[test]
    fn version_one_lists_still_read_and_broken_packing_is_refused() {
        let old: Enrichment = serde_json::from_str(r#"{"model":"m","embedding":[1.0,0.5,-2]}"#).expect("a list");
        assert_eq!(old.embedding, vec![1.0, 0.5, -2.0]);
        for (bad, says) in [(r#""AAAA!""#, "embedding"), (r#""AAA=""#, "not whole float32s"), ("7", "base64")] {
            let err = serde_json::from_str::<Enrichment>(&format!(r#"{{"model":"m","embedding":{bad}}}"#))
                .expect_err(bad)
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
