//! The command-line tools besides serving: the first admin account, generated customers and
//! the customer import.

use std::sync::Arc;

use anyhow::Context;

use crate::server::clock::{Clock, SystemClock};
use crate::server::config;

/// `herald create-admin EMAIL [--name NAME]`: an admin account, with a password read from the
/// terminal (not echoed, asked twice) or, when stdin is not a terminal, its first line; never
/// from the command line, where other users and shell history would see it.
pub async fn create_admin(email: &str, name: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let email = crate::server::accounts::staff::valid_email(email).map_err(anyhow::Error::msg)?;
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or("Admin").to_string());
    let (_, config) = config::load(&config::config_path())?;
    let db = config.open_db().await?;
    if db.user_by_email(&email).await?.is_some() {
        db.close().await;
        anyhow::bail!("an account for {email} already exists");
    }
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))?;
        crate::server::accounts::password::check(&first, &[&email, &name])
            .map_err(anyhow::Error::msg)?;
        if rpassword::prompt_password("The same password again: ")? != first {
            anyhow::bail!("the two passwords differ; nothing was created");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    let created = crate::server::accounts::staff::create_first_admin(
        &db,
        &email,
        &name,
        &password,
        SystemClock.now(),
    )
    .await;
    db.close().await;
    created.map_err(anyhow::Error::msg)?;
    println!(
        "Created the admin account {email}. Sign in at the address Herald prints when it starts."
    );
    Ok(())
}

/// `herald generate-customers N`: adds N generated customers to the configured database.
pub async fn generate_customers(count: usize) -> anyhow::Result<()> {
    let (_, config) = config::load(&config::config_path())?;
    let db = config.open_db().await?;
    let started = std::time::Instant::now();
    println!(
        "Adding {count} customers to {} …",
        crate::server::db::redact_url(&config.database_url)
    );
    crate::server::customers::generate(&db, count, SystemClock.now(), |done| {
        println!(
            "  {done:>9} ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    })
    .await?;
    println!(
        "Done in {:.1} s; {} customers in all.",
        started.elapsed().as_secs_f64(),
        db.count_customers().await?
    );
    db.close().await;
    Ok(())
}

/// `herald import-customers FILE [--skip-bad]`: the page's import, from the command line,
/// with the columns guessed from the header.
pub async fn import_customers(path: &std::path::Path, skip_bad: bool) -> anyhow::Result<()> {
    use crate::server::customers::import::{self, Failure, Progress};
    let (_, config) = config::load(&config::config_path())?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let headers = import::read_header(std::io::BufReader::new(file)).map_err(anyhow::Error::msg)?;
    let mapping = crate::model::import::Mapping::from_header(
        &headers.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .map_err(anyhow::Error::msg)?;
    let db = config.open_db().await?;
    let started = std::time::Instant::now();
    let progress = Arc::new(Progress::default());
    let result = import::run(&db, path, mapping, skip_bad, progress, SystemClock.now()).await;
    db.close().await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(o) => {
            println!(
                "Imported in {seconds:.1} s: {} created, {} updated, {} lines skipped.",
                o.created, o.updated, o.skipped
            );
            for e in o.errors.iter().take(20) {
                println!("  line {}: {}", e.line, e.message);
            }
            Ok(())
        }
        Err(Failure::Lines { count, errors }) => {
            for e in errors.iter().take(20) {
                eprintln!("  line {}: {}", e.line, e.message);
            }
            anyhow::bail!(
                "{count} lines cannot be imported; nothing was imported (--skip-bad imports the rest)"
            )
        }
        Err(e) => Err(e.into()),
    }
}
