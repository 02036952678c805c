//! Market trends from the enriched comments: sentiment and volume over time, share of voice, top and
//! trending entities, spikes with example comments (`service`), and the reports that gather them on a
//! schedule (`report`, `schedule`), and the alerts that push what rules find (`alerts`); both deliver to
//! webhooks (`webhook`).

mod alerts;
mod analysis;
mod aspects;
mod bucket;
pub mod chart;
mod error;
mod render;
mod report;
mod schedule;
mod service;
mod slice;
#[cfg(feature = "testing")]
pub mod testing;
mod themes;
mod webhook;

pub use alerts::{alert_text, AlertKind, AlertRule, Alerter, AlerterOptions, Finding};
pub use analysis::{episodes as spike_episodes, spikes_from, Departure, Episode, Season, SpikeKind, SpikeParams};
pub use aspects::{merge_near_synonyms, AspectExample, AspectList, AspectQuery, AspectSummary, SYNONYM_SIMILARITY};
pub use bucket::{Bucketing, Unit, MAX_BUCKETS};
pub use error::TrendsError;
pub use report::{parse_length, Format, Report, ReportSpec, SliceReport};
pub use schedule::{CronSchedule, Scheduler, SchedulerOptions};
pub use service::{
    spike_window, EntityQuery, EntityTrend, Point, ServedBy, SharePoint, ShareSeries, Spike, Timeline, Trends, Window,
};
pub use slice::Slice;
pub use themes::{ThemeDetail, ThemeOrder, ThemeQuery, ThemeSummary};
pub use webhook::{webhook_signature, WebhookOptions};
