//! A/B tests from the staff's side: each variant's figures side by side, whether the
//! difference is more than chance, and the winner with its reason.

use crate::model::AppError;
use crate::model::ab::{self, AbPlan, AbResults, VariantResult};
use crate::model::results::{ChannelRow, Counts, Results};
use crate::model::{BroadcastStatus, CurrentUser};
use crate::server::db::{Content, Db, VariantRow};
use crate::server::timefmt;

/// How much of a variant's text the results show.
const PREVIEW_CHARS: usize = 60;

/// What tells a variant apart at a glance: the start of its text, else its files' names,
/// else its template's name.
fn preview(
    body: &str,
    files: &[crate::model::media::AttachmentRef],
    template: Option<&str>,
) -> String {
    let text: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() {
        let cut: String = text.chars().take(PREVIEW_CHARS).collect();
        return if cut.len() < text.len() {
            format!("{cut}…")
        } else {
            cut
        };
    }
    if !files.is_empty() {
        return files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
    }
    template
        .map(|t| format!("template {t}"))
        .unwrap_or_default()
}

/// Each variant's figures from `rows` (their deliveries counted per channel), A first; and
/// how many recipients still wait for the winner.
pub fn variant_results(
    rows: &[VariantRow],
    plan: &AbPlan,
    own: &Content,
) -> (Vec<VariantResult>, i64) {
    let waiting = rows
        .iter()
        .filter(|r| r.variant < 0)
        .map(|r| r.channel.counts.audience)
        .sum();
    let variants = (0..plan.count())
        .map(|i| {
            let channels: Vec<ChannelRow> = rows
                .iter()
                .filter(|r| r.variant == i as i64)
                .map(|r| r.channel.clone())
                .collect();
            let totals = channels
                .iter()
                .fold(Counts::default(), |t, c| add(t, c.counts));
            let r = Results::compute(0, String::new(), BroadcastStatus::Sent, totals, channels);
            let (body, files, template) = match i.checked_sub(1).and_then(|n| plan.variants.get(n))
            {
                Some(v) => (&v.body, &v.attachments, v.template.as_ref()),
                None => (&own.body, &own.attachments, own.template.as_ref()),
            };
            VariantResult {
                index: i,
                preview: preview(body, files, template.map(|t| t.name.as_str())),
                counts: totals,
                received: r.received,
                read: r.read,
                reply: r.reply,
                winner: false,
            }
        })
        .collect();
    (variants, waiting)
}

fn add(a: Counts, b: Counts) -> Counts {
    Counts {
        audience: a.audience + b.audience,
        sent: a.sent + b.sent,
        delivered: a.delivered + b.delivered,
        read: a.read + b.read,
        replied: a.replied + b.replied,
        failed: a.failed + b.failed,
    }
}

/// Broadcast `id`'s test for `viewer`'s results page (none without a test).
pub async fn ab_results(
    db: &Db,
    viewer: &CurrentUser,
    id: i64,
    started: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<AbResults>, AppError> {
    let Some(plan) = db.ab_plan(id).await? else {
        return Ok(None);
    };
    let own = db.broadcast_content(id, 0).await?;
    let rows = db.variant_rows(id).await?;
    let (mut variants, waiting) = variant_results(&rows, &plan, &own);
    let (_, verdict) = ab::compare(&variants, plan.measure);
    let tz = timefmt::zone(&viewer.time_zone);
    let decision = match db.ab_decision(id).await? {
        Some(d) => {
            if let Some(v) = variants.get_mut(d.winner as usize) {
                v.winner = true;
            }
            Some(format!(
                "{} won and went to the rest at {}. {}",
                ab::letter(d.winner as usize),
                timefmt::local(d.decided_at, tz),
                d.reason
            ))
        }
        None => plan.test_share.map(|_| {
            let when = started
                .map(|t| t + chrono::Duration::hours(i64::from(plan.wait_hours)))
                .map(|t| format!("at {}", timefmt::local(t, tz)))
                .unwrap_or_else(|| format!("{} h after the start", plan.wait_hours));
            format!(
                "The variant with the highest {} goes to the rest {when}.",
                plan.measure.label()
            )
        }),
    };
    Ok(Some(AbResults {
        variants,
        measure: plan.measure,
        test_share: plan.test_share,
        waiting,
        verdict,
        decision,
    }))
}
