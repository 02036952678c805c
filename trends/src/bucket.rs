//! Time buckets in a time zone: a day in Paris starts at Paris midnight, a week on Monday.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use murmur_store::Grain;
use serde::{Deserialize, Serialize};

use crate::TrendsError;

/// The most buckets one answer holds.
pub const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    /// Nominal length in seconds (days and weeks vary by an hour across daylight-saving changes).
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
            Self::Week => 604_800,
        }
    }

    /// A sensible bucket for a window: about 24–200 points.
    /// The rhythm spikes are judged against (see `analysis`): hours against the same hour of the previous
    /// 7 days, days against the same weekday of the previous 4 weeks.
    pub fn season(self) -> Option<crate::analysis::Season> {
        use crate::analysis::Season;
        match self {
            Self::Hour => Some(Season { period: 24, cycles: 7 }),
            Self::Day => Some(Season { period: 7, cycles: 4 }),
            Self::Minute | Self::Week => None,
        }
    }

    pub fn for_window(length: Duration) -> Self {
        if length <= Duration::hours(3) {
            Self::Minute
        } else if length <= Duration::days(8) {
            Self::Hour
        } else if length <= Duration::days(200) {
            Self::Day
        } else {
            Self::Week
        }
    }
}

/// How a window is cut into buckets.
#[derive(Debug, Clone, Copy)]
pub struct Bucketing {
    pub unit: Unit,
    pub tz: Tz,
}

impl Bucketing {
    /// The start of the bucket holding `t`.
    pub fn start(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&self.tz).naive_local();
        let truncated = match self.unit {
            Unit::Minute => local.with_second(0).and_then(|l| l.with_nanosecond(0)),
            Unit::Hour => local.with_minute(0).and_then(|l| l.with_second(0)).and_then(|l| l.with_nanosecond(0)),
            Unit::Day => local.date().and_hms_opt(0, 0, 0),
            Unit::Week => {
                let monday = local.date() - Duration::days(i64::from(local.weekday().num_days_from_monday()));
                monday.and_hms_opt(0, 0, 0)
            }
        };
        truncated.map_or(t, |l| self.local_to_utc(l, t))
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self.unit {
            Unit::Minute => start + Duration::minutes(1),
            Unit::Hour => start + Duration::hours(1),
            // Calendar days and weeks: 23 or 25 hours across a daylight-saving change.
            Unit::Day | Unit::Week => {
                let days = if self.unit == Unit::Day { 1 } else { 7 };
                let local = start.with_timezone(&self.tz).naive_local() + Duration::days(days);
                let next = self.local_to_utc(local, start + Duration::days(days));
                if next > start {
                    next
                } else {
                    start + Duration::days(days)
                }
            }
        }
    }

    fn local_to_utc(&self, local: NaiveDateTime, fallback: DateTime<Utc>) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // A local time skipped by a daylight-saving change: the hour after it.
            None => self
                .tz
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
                .map_or(fallback, |t| t.with_timezone(&Utc)),
        }
    }

    /// The starts of the buckets that overlap `[from, to)`, at most [`MAX_BUCKETS`].
    pub fn starts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>, TrendsError> {
        let mut out = Vec::new();
        let mut at = self.start(from);
        while at < to {
            if out.len() == MAX_BUCKETS {
                return Err(TrendsError::Invalid(format!(
                    "more than {MAX_BUCKETS} {} buckets; pick a larger bucket or a shorter window",
                    self.unit.as_str()
                )));
            }
            out.push(at);
            at = self.next(at);
        }
        Ok(out)
    }

    /// The rollup grain buckets are summed from: the coarsest whose buckets never straddle two of ours.
    pub fn grain(&self, at: DateTime<Utc>) -> Grain {
        let offset_seconds = self.tz.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc();
        match self.unit {
            Unit::Minute => Grain::Minute,
            _ if offset_seconds % 3600 != 0 => Grain::Minute,
            Unit::Hour => Grain::Hour,
            Unit::Day | Unit::Week if offset_seconds == 0 && self.tz == Tz::UTC => Grain::Day,
            Unit::Day | Unit::Week => Grain::Hour,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("timestamp")
    }

    #[test]
    fn days_and_weeks_follow_the_time_zone() {
        let paris = Bucketing { unit: Unit::Day, tz: chrono_tz::Europe::Paris };
        // 23:30 UTC on 1 March is 00:30 on 2 March in Paris.
        assert_eq!(paris.start(utc("2026-03-01T23:30:00Z")), utc("2026-03-01T23:00:00Z"));
        // The day daylight-saving time starts is 23 hours long.
        assert_eq!(paris.next(utc("2026-03-28T23:00:00Z")), utc("2026-03-29T22:00:00Z"));
        let week = Bucketing { unit: Unit::Week, tz: Tz::UTC };
        // 2026-03-05 is a Thursday.
        assert_eq!(week.start(utc("2026-03-05T10:00:00Z")), utc("2026-03-02T00:00:00Z"));
        assert_eq!(week.grain(utc("2026-03-05T10:00:00Z")), Grain::Day);
        assert_eq!(paris.grain(utc("2026-03-05T10:00:00Z")), Grain::Hour);
        let kolkata = Bucketing { unit: Unit::Hour, tz: chrono_tz::Asia::Kolkata };
        assert_eq!(kolkata.grain(utc("2026-03-05T10:00:00Z")), Grain::Minute);
    }

    #[test]
    fn starts_cover_the_window_and_refuse_too_many() {
        let hours = Bucketing { unit: Unit::Hour, tz: Tz::UTC };
        let starts = hours.starts(utc("2026-03-01T10:30:00Z"), utc("2026-03-01T13:00:00Z")).expect("few");
        assert_eq!(starts, vec![utc("2026-03-01T10:00:00Z"), utc("2026-03-01T11:00:00Z"), utc("2026-03-01T12:00:00Z")]);
        let minutes = Bucketing { unit: Unit::Minute, tz: Tz::UTC };
        assert!(minutes.starts(utc("2026-01-01T00:00:00Z"), utc("2026-03-01T00:00:00Z")).is_err());
    }
}
