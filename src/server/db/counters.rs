//! Broadcasts' counters, and the one order in which transactions take their locks.
//!
//! The counters (`broadcasts`, `broadcast_channel_counts`, `broadcast_timeline`) change in the
//! same transactions as the deliveries they count, so they are the hottest rows there are:
//! the dispatcher's record of every batch and every batch of provider reports and replies
//! update the same few rows. On PostgreSQL two transactions that lock the same rows in a
//! different order deadlock, and one of them is rolled back. Every transaction that changes
//! deliveries and counters therefore takes its locks in this order:
//!
//! 1. `deliveries` rows, by ascending id;
//! 2. rows only this transaction writes (new `messages`, `early_reports`, opt-outs, the audit log);
//! 3. `broadcast_channel_counts`, by ascending (broadcast, channel);
//! 4. `broadcast_timeline`, by ascending (broadcast, minute);
//! 5. `broadcasts`, by ascending id.
//!
//! Steps 3–5 are [`Tally::write_statements`], run last, just before the commit, so a counter
//! row is held for as short a time as possible. A transaction that needs a broadcast's status
//! first reads it without a lock and guards its final `UPDATE broadcasts` on it.

use std::collections::BTreeMap;

/// The counter changes one transaction makes, gathered as it goes and written at its end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// (broadcast, channel) → [sent or further, delivered or further, read, replied, failed]
    channels: BTreeMap<(i64, i64), [i64; 5]>,
    /// (broadcast, minute) → [sent, delivered, read, replied]
    timeline: BTreeMap<(i64, i64), [i64; 4]>,
}

/// Which counter a change is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Sent = 0,
    Delivered = 1,
    Read = 2,
    Replied = 3,
    Failed = 4,
}

impl Tally {
    /// Adds `by` to one counter of a broadcast on a channel (totals follow).
    pub fn add(&mut self, broadcast: i64, channel: i64, counter: Counter, by: i64) {
        self.channels.entry((broadcast, channel)).or_default()[counter as usize] += by;
    }

    /// Adds `by` events of `counter` (not failures) at `minute` to a broadcast's timeline.
    pub fn add_timeline(&mut self, broadcast: i64, minute: i64, counter: Counter, by: i64) {
        if counter != Counter::Failed {
            self.timeline.entry((broadcast, minute)).or_default()[counter as usize] += by;
        }
    }

    /// The statements that write these changes, in the lock order above, each with its
    /// (all integer) parameters.
    pub fn write_statements(&self) -> Vec<(&'static str, Vec<i64>)> {
        let mut out = Vec::new();
        let mut totals: BTreeMap<i64, [i64; 5]> = BTreeMap::new();
        for (&(broadcast, channel), c) in &self.channels {
            if *c == [0; 5] {
                continue;
            }
            let t = totals.entry(broadcast).or_default();
            for (total, add) in t.iter_mut().zip(c) {
                *total += add;
            }
            out.push((
                "UPDATE broadcast_channel_counts SET sent_count = sent_count + $1, \
                 delivered_count = delivered_count + $2, read_count = read_count + $3, \
                 replied_count = replied_count + $4, failed_count = failed_count + $5 \
                 WHERE broadcast_id = $6 AND channel_id = $7",
                vec![c[0], c[1], c[2], c[3], c[4], broadcast, channel],
            ));
        }
        for (&(broadcast, minute), t) in &self.timeline {
            if *t == [0; 4] {
                continue;
            }
            out.push((
                super::dispatch::TIMELINE_ADD,
                vec![broadcast, minute, t[0], t[1], t[2], t[3]],
            ));
        }
        for (broadcast, c) in totals {
            if c == [0; 5] {
                continue;
            }
            out.push((
                "UPDATE broadcasts SET sent_count = sent_count + $1, \
                 delivered_count = delivered_count + $2, read_count = read_count + $3, \
                 replied_count = replied_count + $4, failed_count = failed_count + $5 WHERE id = $6",
                vec![c[0], c[1], c[2], c[3], c[4], broadcast],
            ));
        }
        out
    }
}

/// Runs a [`Tally`]'s statements inside the open transaction `$tx`.
macro_rules! write_tally {
    ($tx:expr, $tally:expr) => {{
        for (sql, binds) in $tally.write_statements() {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use write_tally;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_written_channels_then_timeline_then_broadcasts_each_in_key_order() {
        let mut t = Tally::default();
        t.add(9, 2, Counter::Sent, 3);
        t.add(4, 7, Counter::Read, 1);
        t.add(9, 1, Counter::Failed, 1);
        t.add(4, 7, Counter::Replied, 2);
        t.add_timeline(9, 100, Counter::Sent, 3);
        t.add_timeline(4, 101, Counter::Read, 1);
        t.add_timeline(4, 99, Counter::Replied, 2);
        t.add_timeline(4, 99, Counter::Failed, 5);
        let s = t.write_statements();
        let kinds: Vec<(&str, Vec<i64>)> = s
            .iter()
            .map(|(sql, b)| {
                let table = if sql.contains("broadcast_channel_counts") {
                    "channel"
                } else if sql.contains("broadcast_timeline") {
                    "timeline"
                } else {
                    "broadcast"
                };
                (table, b.clone())
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("channel", vec![0, 0, 1, 2, 0, 4, 7]),
                ("channel", vec![0, 0, 0, 0, 1, 9, 1]),
                ("channel", vec![3, 0, 0, 0, 0, 9, 2]),
                ("timeline", vec![4, 99, 0, 0, 0, 2]),
                ("timeline", vec![4, 101, 0, 0, 1, 0]),
                ("timeline", vec![9, 100, 3, 0, 0, 0]),
                ("broadcast", vec![0, 0, 1, 2, 0, 4]),
                ("broadcast", vec![3, 0, 0, 0, 1, 9]),
            ]
        );
        assert!(Tally::default().write_statements().is_empty());
    }
}
