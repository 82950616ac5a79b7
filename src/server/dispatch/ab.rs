//! The A/B winner: once a test has run its hours, the variant with the highest rate by the
//! broadcast's measure goes to the recipients outside the test share, with the reason kept.

use super::Dispatcher;
use crate::server::broadcast::{ab::variant_results, waves};
use crate::server::db::DbError;

impl Dispatcher {
    /// Chooses the winner of every test whose time has come and hands it to the rest; how
    /// many recipients it went to.
    pub async fn decide_ab_due(&self) -> Result<u64, DbError> {
        let now = self.clock.now();
        let due = self.db.ab_due(now).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let (rules, _) = self.db.workspace_rules().await?;
        let mut total = 0;
        for d in due {
            let rows = self.db.variant_rows(d.id).await?;
            // The winner needs the figures only, not A's text for a preview.
            let (variants, _) = variant_results(&rows, &d.plan, &Default::default());
            let (winner, reason) =
                crate::model::ab::winner(&variants, d.plan.measure, d.plan.wait_hours);
            // The rest get it at their time (a local-time broadcast's wall clock, if still
            // ahead) and never in their quiet hours.
            let (timing, _, zones) = self.db.broadcast_timing(d.id).await?;
            let exempt = timing.quiet_exempt.is_some();
            let plan = waves::plan(now, timing.local_at, &rules, exempt, &zones);
            let moved = self
                .db
                .decide_ab(d.id, winner as i64, &reason, now, &plan)
                .await?;
            if let Some(n) = moved {
                tracing::info!(
                    broadcast = d.id,
                    winner,
                    recipients = n,
                    "A/B winner chosen"
                );
                self.db.announce_broadcast(d.id).await;
                self.wake.notify_one();
                total += n;
            }
        }
        Ok(total)
    }

    /// [`Dispatcher::decide_ab_due`] when its gate lets it run (the supervisor's pace).
    pub(super) async fn decide_ab_now_and_then(&self) -> Result<(), DbError> {
        if self.ab_gate.due() {
            self.decide_ab_due().await?;
        }
        Ok(())
    }
}
