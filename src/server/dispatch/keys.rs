//! The key each delivery carries to the provider, and reading it back from a report.

/// The key a delivery carries to the provider: the same for every attempt, so a provider
/// that saw it already (a crash between its answer and our record) drops the repeat.
pub fn idempotency_key(delivery_id: i64) -> String {
    format!("herald-delivery-{delivery_id}")
}

/// The key of delivery `id` in "Retry failed" round `round` (0: the broadcast's own send).
pub fn delivery_key(id: i64, round: i64) -> String {
    match round {
        0 => idempotency_key(id),
        round => format!("{}-retry-{round}", idempotency_key(id)),
    }
}

/// The (delivery, round) a [`delivery_key`] names, as a provider's report returns it; only
/// a key spelled exactly as Herald spells it.
pub fn parse_delivery_key(key: &str) -> Option<(i64, i64)> {
    let rest = key.strip_prefix("herald-delivery-")?;
    let (id, round) = rest.split_once("-retry-").unwrap_or((rest, "0"));
    let (id, round): (i64, i64) = (id.parse().ok()?, round.parse().ok()?);
    (id > 0 && round >= 0 && delivery_key(id, round) == key).then_some((id, round))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_keys_are_read_back_exactly() {
        assert_eq!(parse_delivery_key(&delivery_key(42, 0)), Some((42, 0)));
        assert_eq!(parse_delivery_key(&delivery_key(42, 3)), Some((42, 3)));
        for bad in [
            "",
            "herald-delivery-",
            "herald-delivery-x",
            "herald-delivery-+4",
            "herald-delivery-04",
            "herald-delivery-0",
            "herald-delivery-4-retry-0",
            "herald-delivery-4-retry-",
            "other-4",
        ] {
            assert_eq!(parse_delivery_key(bad), None, "{bad}");
        }
    }
}
