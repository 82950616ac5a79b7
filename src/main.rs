//! The Herald server binary.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--demo`: load the demo data into an empty database (as HERALD_DEMO_DATA=true does).
    let demo = args.iter().any(|a| a == "--demo");
    args.retain(|a| a != "--demo");
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["serve"] => herald::server::startup::run(demo).await,
        ["create-admin", email] => herald::server::cli::create_admin(email, None).await,
        ["create-admin", email, "--name", name] => {
            herald::server::cli::create_admin(email, Some(name)).await
        }
        ["generate-customers", n] => match n.replace('_', "").parse::<usize>() {
            Ok(n) if n > 0 => herald::server::cli::generate_customers(n).await,
            _ => Err(anyhow::anyhow!(
                "generate-customers needs a positive number, not {n:?}"
            )),
        },
        ["import-customers", file] => {
            herald::server::cli::import_customers(file.as_ref(), false).await
        }
        ["import-customers", file, "--skip-bad"] => {
            herald::server::cli::import_customers(file.as_ref(), true).await
        }
        _ => Err(anyhow::anyhow!(
            "unknown arguments {args:?}\nusage: herald [serve] [--demo] | herald create-admin EMAIL [--name NAME] | herald generate-customers N | herald import-customers FILE.csv [--skip-bad]"
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser side starts from `hydrate()` in lib.rs.
}
