//! A slice of the comments a trend is about: a brand or brand group of the catalogue, a tag, an entity, a
//! source, words, or a mix.

use chrono::{DateTime, Utc};
use murmur_core::{normalize_entity_name, EmotionLabel};
use murmur_search::{EntityFilter, Filters};
use murmur_store::{Dim, Duplicates};
use serde::{Deserialize, Serialize};

use crate::TrendsError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A producer's tag, e.g. a brand (`pixel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `ORG:Google` (a name of one type) or `Google` (the name, whatever its type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Words the comments must match (tantivy query syntax); read from the search index, not the rollups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Comments the model found this emotion in (`anger`, `joy`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<String>,
    /// Comments mentioning this brand of the catalogue (`/v1/brands`), by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Comments mentioning any brand of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_group: Option<String>,
    /// Comments of this theme (`/v1/themes`), by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<murmur_core::themes::ThemeId>,
    /// Comments in this language (`en`, `fr`, `und` for undetermined), as [`murmur_core::language_key`]
    /// decides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// How copies count: a cluster of near-duplicates once (the default) or every copy. Slices served from
    /// the search index (words, or two of tag, entity, emotion and language) count every copy.
    #[serde(default, skip_serializing_if = "counts_once")]
    pub duplicates: Duplicates,
}

fn counts_once(duplicates: &Duplicates) -> bool {
    *duplicates == Duplicates::Once
}

impl Slice {
    /// One dimension as a share-of-voice series names it: `brand:United Airlines`, `brand_group:airlines`,
    /// `theme:12`, `tag:pixel`, `entity:ORG:google`, `entity:google`, `emotion:anger`, `lang:fr`,
    /// `source:twitter` or `all`.
    pub fn parse_one(s: &str) -> Result<Self, TrendsError> {
        let s = s.trim();
        let bad = || {
            TrendsError::Invalid(format!(
                "slice {s:?}: expected brand:NAME, brand_group:NAME, theme:ID, tag:NAME, entity:[TYPE:]NAME, \
                 emotion:NAME, lang:CODE, source:NAME or all"
            ))
        };
        if s == "all" {
            return Ok(Self::default());
        }
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty()).ok_or_else(bad)?;
        let slice = match kind {
            "tag" => Self { tag: Some(value), ..Self::default() },
            "entity" => Self { entity: Some(value), ..Self::default() },
            "source" => Self { source: Some(value), ..Self::default() },
            "emotion" => Self { emotion: Some(value), ..Self::default() },
            "lang" => Self { lang: Some(value), ..Self::default() },
            "brand" => Self { brand: Some(value), ..Self::default() },
            "brand_group" => Self { brand_group: Some(value), ..Self::default() },
            "theme" => Self { theme: Some(value.parse().map_err(|_| bad())?), ..Self::default() },
            _ => return Err(bad()),
        };
        slice.validate()?;
        Ok(slice)
    }

    /// Whether the slice is counted in the rollups only (a brand, brand group or theme: the search index does
    /// not hold them), so that its examples come from Postgres.
    pub fn rollups_only(&self) -> bool {
        self.brand.is_some() || self.brand_group.is_some() || self.theme.is_some()
    }

    pub fn validate(&self) -> Result<(), TrendsError> {
        if self.theme.is_some() {
            let others = [&self.tag, &self.entity, &self.q, &self.emotion, &self.brand, &self.brand_group, &self.lang];
            if others.iter().any(|o| o.is_some()) {
                return Err(TrendsError::Invalid(
                    "theme: a theme slice combines with source only, not with tag, entity, q, emotion, lang or a \
                     brand"
                        .into(),
                ));
            }
        }
        let brands = [("brand", &self.brand), ("brand_group", &self.brand_group)];
        for (name, value) in brands.iter().filter_map(|(n, v)| v.as_ref().map(|v| (n, v))) {
            murmur_core::brands::check_name(name, value).map_err(TrendsError::Invalid)?;
            // Brands are counted in the rollups only (the search index does not hold them).
            let others = [&self.tag, &self.entity, &self.q, &self.emotion, &self.lang];
            if others.iter().any(|o| o.is_some()) || (self.brand.is_some() && self.brand_group.is_some()) {
                return Err(TrendsError::Invalid(format!(
                    "{name}: a brand or brand group slice combines with source only, not with tag, entity, q, \
                     emotion, lang or another brand"
                )));
            }
        }
        if let Some(source) = &self.source {
            murmur_core::check_source(source).map_err(TrendsError::Invalid)?;
        }
        if let Some(entity) = self.entity.as_ref().filter(|e| EntityFilter::parse(e).is_none()) {
            return Err(TrendsError::Invalid(format!("entity {entity:?}: expected TYPE:name, TYPE or name")));
        }
        if let Some(emotion) = self.emotion.as_ref().filter(|e| EmotionLabel::parse(e).is_none()) {
            return Err(TrendsError::Invalid(format!(
                "emotion {emotion:?}: expected anger, disgust, fear, joy, sadness, surprise or neutral"
            )));
        }
        if let Some(lang) = &self.lang {
            murmur_core::check_language_key(lang).map_err(|why| TrendsError::Invalid(format!("lang: {why}")))?;
        }
        if let Some(q) = &self.q {
            if q.trim().is_empty() {
                return Err(TrendsError::Invalid("q must not be blank".into()));
            }
            murmur_search::check_query_syntax(q).map_err(|e| TrendsError::Invalid(e.to_string()))?;
        }
        Ok(())
    }

    /// The slice as query parameters of the trend routes.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("source", &self.source),
            ("tag", &self.tag),
            ("entity", &self.entity),
            ("q", &self.q),
            ("emotion", &self.emotion),
            ("brand", &self.brand),
            ("brand_group", &self.brand_group),
            ("lang", &self.lang),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .chain(self.theme.map(|id| ("theme", id.to_string())))
        .chain((self.duplicates != Duplicates::Once).then(|| ("duplicates", self.duplicates.as_str().to_owned())))
        .collect()
    }

    /// A short name for tables and legends.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(brand) = &self.brand {
            parts.push(brand.clone());
        }
        if let Some(group) = &self.brand_group {
            parts.push(format!("{group} (group)"));
        }
        if let Some(theme) = self.theme {
            parts.push(format!("theme {theme}"));
        }
        if let Some(tag) = &self.tag {
            parts.push(format!("#{tag}"));
        }
        if let Some(entity) = &self.entity {
            parts.push(entity.clone());
        }
        if let Some(q) = &self.q {
            parts.push(format!("\"{q}\""));
        }
        if let Some(emotion) = &self.emotion {
            parts.push(format!("({emotion})"));
        }
        if let Some(lang) = &self.lang {
            parts.push(format!("in {lang}"));
        }
        if let Some(source) = &self.source {
            parts.push(format!("on {source}"));
        }
        let label = if parts.is_empty() { "all comments".to_owned() } else { parts.join(" ") };
        match self.duplicates {
            Duplicates::Once => label,
            Duplicates::Include => format!("{label}, every copy"),
        }
    }

    /// The rollup dimension that counts exactly this slice (its source aside), if there is one: none for
    /// words, for two of tag, entity, emotion and language together, or for an entity type without a name.
    pub fn dim(&self) -> Option<Dim> {
        if self.q.is_some() {
            return None;
        }
        if let Some(lang) = &self.lang {
            return match (&self.tag, &self.entity, &self.emotion) {
                (None, None, None) => Some(Dim::Lang(lang.clone())),
                _ => None,
            };
        }
        if let Some(brand) = &self.brand {
            return Some(Dim::Brand(murmur_core::brand_key(brand)));
        }
        if let Some(group) = &self.brand_group {
            return Some(Dim::BrandGroup(murmur_core::brand_key(group)));
        }
        if let Some(theme) = self.theme {
            return Some(Dim::Theme(theme));
        }
        if let Some(emotion) = &self.emotion {
            return match (&self.tag, &self.entity) {
                (None, None) => EmotionLabel::parse(emotion).map(Dim::Emotion),
                _ => None,
            };
        }
        match (&self.tag, &self.entity) {
            (None, None) => Some(Dim::All),
            (Some(tag), None) => Some(Dim::Tag(tag.trim().to_lowercase())),
            (None, Some(entity)) => {
                let filter = EntityFilter::parse(entity)?;
                match (filter.label, filter.name) {
                    (Some(label), Some(name)) => Some(Dim::Entity(label, name)),
                    (None, Some(name)) => Some(Dim::Name(normalize_entity_name(&name))),
                    _ => None,
                }
            }
            (Some(_), Some(_)) => None,
        }
    }

    /// The slice as search filters over `[from, to)`.
    pub fn filters(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Filters {
        Filters {
            source: self.source.clone(),
            sentiment: None,
            entity: self.entity.as_deref().and_then(EntityFilter::parse),
            tag: self.tag.as_ref().map(|t| t.trim().to_lowercase()),
            from: Some(from),
            to: Some(to),
            text: self.q.clone(),
            emotion: self.emotion.as_deref().and_then(EmotionLabel::parse),
            language: self.lang.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use murmur_core::EntityLabel;

    use super::*;

    #[test]
    fn slices_map_to_rollup_dimensions_where_one_counts_them() {
        let dim = |s: &str| Slice::parse_one(s).expect("valid").dim();
        assert_eq!(dim("tag:Pixel"), Some(Dim::Tag("pixel".into())));
        assert_eq!(dim("entity:ORG:Google"), Some(Dim::Entity(EntityLabel::Org, "google".into())));
        assert_eq!(dim("entity:Tim  Cook"), Some(Dim::Name("tim cook".into())));
        assert_eq!(dim("emotion:Anger"), Some(Dim::Emotion(murmur_core::EmotionLabel::Anger)));
        assert!(Slice::parse_one("emotion:bored").is_err());
        let both = Slice { tag: Some("pixel".into()), emotion: Some("joy".into()), ..Slice::default() };
        assert_eq!(both.dim(), None, "a tag and an emotion together are counted from the index");
        assert_eq!(dim("all"), Some(Dim::All));
        assert_eq!(dim("source:twitter"), Some(Dim::All));
        assert_eq!(dim("entity:ORG"), None);
        let words = Slice { q: Some("battery".into()), ..Slice::default() };
        assert_eq!(words.dim(), None);
        assert_eq!(dim("brand:United  Airlines"), Some(Dim::Brand("united airlines".into())));
        assert_eq!(dim("brand_group:Airlines"), Some(Dim::BrandGroup("airlines".into())));
        assert_eq!(dim("theme:12"), Some(Dim::Theme(12)));
        assert!(Slice::parse_one("theme:twelve").is_err());
        let mixed = Slice { theme: Some(3), tag: Some("pixel".into()), ..Slice::default() };
        assert!(mixed.validate().is_err());
        let mixed = Slice { brand: Some("apple".into()), tag: Some("pixel".into()), ..Slice::default() };
        assert!(mixed.validate().expect_err("refused").to_string().contains("combines with source only"));
        assert!(Slice::parse_one("brands:x").is_err());
        assert_eq!(dim("lang:fr"), Some(Dim::Lang("fr".into())));
        assert!(Slice::parse_one("lang:French").is_err(), "a code, not a name");
        let both = Slice { lang: Some("fr".into()), tag: Some("pixel".into()), ..Slice::default() };
        assert_eq!(both.dim(), None, "a language and a tag together are counted from the index");
        let mixed = Slice { theme: Some(3), lang: Some("fr".into()), ..Slice::default() };
        assert!(mixed.validate().is_err());
        assert!(Slice::parse_one("tag:").is_err());
        assert!(Slice { q: Some("(unclosed".into()), ..Slice::default() }.validate().is_err());
        assert!(Slice { q: Some("battery -charger".into()), ..Slice::default() }.validate().is_ok());
    }
}
