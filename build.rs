// sqlx::migrate! embeds the migration files at compile time; a new file in migrations/ must
// rebuild the crate too (sqlx's documented recipe).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
