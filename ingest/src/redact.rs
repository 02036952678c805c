//! Optional PII redaction of stored text. After enrichment (the models read the text as written, so NER still
//! finds the people to redact), each chosen kind of span is replaced by a marker: e-mail addresses by
//! `[email]`, phone numbers by `[phone]`, names the NER head labels PER by `[person]`. Entity offsets are moved
//! to the new text; PER entities and any entity inside a redacted span are dropped (their text is gone).
//! What is not redacted: the embedding (computed from the original text, not reversible to it), and the
//! original message in the `comments` topic (the topic's retention decides how long it lives).

use std::sync::OnceLock;

use murmur_core::{EnrichedComment, EntityLabel};
use regex::Regex;

/// What to redact; all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redaction {
    pub emails: bool,
    pub phones: bool,
    pub persons: bool,
}

impl Redaction {
    /// `emails,phones,persons` in any order and combination, `all`, or `none` / empty.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut redaction = Self::default();
        for kind in spec.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match kind {
                "emails" => redaction.emails = true,
                "phones" => redaction.phones = true,
                "persons" => redaction.persons = true,
                "all" => redaction = Self { emails: true, phones: true, persons: true },
                "none" => {}
                other => return Err(format!("unknown PII kind {other:?} (emails, phones, persons, all or none)")),
            }
        }
        Ok(redaction)
    }

    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// Rewrites the comment's text, entities and aspects in place.
    pub fn apply(&self, enriched: &mut EnrichedComment) {
        if self.is_off() {
            return;
        }
        let text = &enriched.comment.text;
        let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
        if self.emails {
            spans.extend(email().find_iter(text).map(|m| (m.start(), m.end(), "[email]")));
        }
        if self.phones {
            spans.extend(
                phone()
                    .find_iter(text)
                    .filter(|m| (9..=15).contains(&m.as_str().bytes().filter(u8::is_ascii_digit).count()))
                    .map(|m| (m.start(), m.end(), "[phone]")),
            );
        }
        // Entity offsets are in characters; the text is edited in bytes.
        let mut bytes_at: Vec<usize> = text.char_indices().map(|(byte, _)| byte).collect();
        bytes_at.push(text.len());
        let byte = |char_index: usize| bytes_at.get(char_index).copied();
        if self.persons {
            for entity in enriched.enrichment.entities.iter().flatten().filter(|e| e.label == EntityLabel::Per) {
                if let (Some(start), Some(end)) = (byte(entity.start), byte(entity.end)) {
                    spans.push((start, end, "[person]"));
                }
            }
        }
        if spans.is_empty() {
            return;
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize, &'static str)> = Vec::with_capacity(spans.len());
        for span in spans {
            match merged.last_mut() {
                Some(last) if span.0 < last.1 => last.1 = last.1.max(span.1),
                _ => merged.push(span),
            }
        }
        let mut redacted = String::with_capacity(text.len());
        let mut at = 0;
        for &(start, end, marker) in &merged {
            redacted.push_str(&text[at..start]);
            redacted.push_str(marker);
            at = end;
        }
        redacted.push_str(&text[at..]);

        // Each kept span (entity or aspect) moves by what the redactions before it removed and added, in
        // characters; one inside a redaction goes with its text.
        let chars = |s: &str| s.chars().count() as isize;
        let shifts: Vec<(usize, usize, isize)> =
            merged.iter().map(|&(start, end, marker)| (start, end, chars(marker) - chars(&text[start..end]))).collect();
        let moved = |start_char: &mut usize, end_char: &mut usize| -> bool {
            let (Some(start), Some(end)) = (byte(*start_char), byte(*end_char)) else { return false };
            if shifts.iter().any(|&(s, e, _)| start < e && s < end) {
                return false;
            }
            let shift: isize = shifts.iter().filter(|&&(_, e, _)| e <= start).map(|&(_, _, d)| d).sum();
            *start_char = (*start_char as isize + shift) as usize;
            *end_char = (*end_char as isize + shift) as usize;
            true
        };
        if let Some(entities) = enriched.enrichment.entities.as_mut() {
            entities.retain_mut(|entity| {
                !(self.persons && entity.label == EntityLabel::Per) && moved(&mut entity.start, &mut entity.end)
            });
        }
        if let Some(aspects) = enriched.enrichment.aspects.as_mut() {
            aspects.retain_mut(|aspect| moved(&mut aspect.start, &mut aspect.end));
        }
        enriched.comment.text = redacted;
    }
}

fn email() -> &'static Regex {
    static EMAIL: OnceLock<Regex> = OnceLock::new();
    EMAIL.get_or_init(|| {
        Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").expect("e-mail pattern")
    })
}

/// Digits with the usual separators, an optional leading `+`; 9 to 15 digits (checked by the caller), so
/// order numbers of a few digits and years stay.
fn phone() -> &'static Regex {
    static PHONE: OnceLock<Regex> = OnceLock::new();
    PHONE.get_or_init(|| Regex::new(r"(?:\+|\b)\d(?:[\d\s().-]{7,20})\d\b").expect("phone pattern"))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use murmur_core::{Comment, Enrichment, Entity};

    use super::*;

    fn enriched(text: &str, entities: &[(EntityLabel, &str)]) -> EnrichedComment {
        let entities = entities
            .iter()
            .map(|&(label, name)| {
                let byte = text.find(name).expect("entity in text");
                let start = text[..byte].chars().count();
                Entity { label, text: name.into(), start, end: start + name.chars().count(), score: 0.9 }
            })
            .collect();
        let comment = Comment {
            source: "s".into(),
            id: "1".into(),
            author: None,
            text: text.into(),
            created_at: Utc::now(),
            lang: None,
            url: None,
            tags: Vec::new(),
            metadata: serde_json::Map::new(),
        };
        let enrichment = Enrichment {
            model: "m".into(),
            embedding: vec![1.0],
            sentiment: None,
            entities: Some(entities),
            emotion: None,
            aspects: None,
            language: None,
            skipped: None,
            multilingual: None,
        };
        EnrichedComment::new(comment, enrichment)
    }

    #[test]
    fn emails_phones_and_people_are_replaced_and_other_entities_move_with_the_text() {
        let all = Redaction::parse("emails, phones,persons").expect("valid");
        let mut c = enriched(
            "Émile Zola wrote to help@acme.io or +33 1 23 45 67 89 about Acme in Paris (order 1234, 2026).",
            &[(EntityLabel::Per, "Émile Zola"), (EntityLabel::Org, "Acme"), (EntityLabel::Loc, "Paris")],
        );
        all.apply(&mut c);
        assert_eq!(c.comment.text, "[person] wrote to [email] or [phone] about Acme in Paris (order 1234, 2026).");
        let kept: Vec<(&str, usize, usize)> =
            c.enrichment.entities.iter().flatten().map(|e| (e.text.as_str(), e.start, e.end)).collect();
        assert_eq!(kept.len(), 2, "the person is gone: {kept:?}");
        assert!(c.check().is_ok(), "offsets point at the new text: {:?}", c.check());
    }

    #[test]
    fn aspects_move_with_the_text_and_go_with_a_redacted_span() {
        let text = "Ana at ana@globex.com says the battery of her Globex is bad";
        let mut c = enriched(text, &[(EntityLabel::Per, "Ana")]);
        let aspect = |term: &str| {
            let start = text[..text.find(term).expect("in text")].chars().count();
            let sentiment = murmur_core::Sentiment {
                label: murmur_core::SentimentLabel::Negative,
                negative: 0.9,
                neutral: 0.05,
                positive: 0.05,
            };
            murmur_core::Aspect {
                text: term.into(),
                start,
                end: start + term.chars().count(),
                name: murmur_core::aspect_name(term),
                sentiment,
                score: 0.9,
            }
        };
        c.enrichment.aspects = Some(vec![aspect("globex.com"), aspect("battery")]);
        Redaction::parse("all").expect("valid").apply(&mut c);
        assert_eq!(c.comment.text, "[person] at [email] says the battery of her Globex is bad");
        let kept: Vec<&str> = c.enrichment.aspects.iter().flatten().map(|a| a.text.as_str()).collect();
        assert_eq!(kept, ["battery"], "the term inside the address went with it");
        assert!(c.check().is_ok(), "offsets point at the new text: {:?}", c.check());
    }

    #[test]
    fn only_the_chosen_kinds_and_entities_inside_a_span_go() {
        let mut c = enriched("Mail Ana at ana@globex.com", &[(EntityLabel::Per, "Ana"), (EntityLabel::Org, "globex")]);
        Redaction::parse("emails").expect("valid").apply(&mut c);
        assert_eq!(c.comment.text, "Mail Ana at [email]");
        let names: Vec<&str> = c.enrichment.entities.iter().flatten().map(|e| e.text.as_str()).collect();
        assert_eq!(names, ["Ana"], "the ORG inside the address went with it");
        assert!(c.check().is_ok());
        let mut untouched = enriched("call 555-1234 ext 12", &[]);
        Redaction::parse("all").expect("valid").apply(&mut untouched);
        assert_eq!(untouched.comment.text, "call 555-1234 ext 12", "7 digits are not a phone number here");
        assert!(Redaction::parse("addresses").is_err());
        assert!(Redaction::parse("").expect("valid").is_off());
    }
}
