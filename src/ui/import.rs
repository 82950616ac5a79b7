//! The customer import pages: upload a CSV file, check the preview and the column mapping,
//! start, watch the progress bar, read the outcome. Plain forms; the progress page reloads
//! itself every second while the import runs, so no JavaScript is needed.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::import::get_import;
use crate::model::import::{Column, ImportPage, ImportStage, ImportView, LineError, PreviewLine};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn ImportPageView() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id"));
    let error = use_query_map().with_untracked(|q| q.get("error"));
    let data = Resource::new(move || id.clone(), get_import);
    view! {
        <Title text="Import customers · Herald"/>
        <AppHeader current="customers"/>
        <main class="narrow">
            <p class="crumbs"><a href="/customers">"Customers"</a></p>
            <h1>"Import customers"</h1>
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |p| view! { <Stage page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Stage(page: ImportPage) -> impl IntoView {
    if !page.can_import {
        return view! {
            <p class="error" role="alert">"Only staff and admins can import customers."</p>
            <p><a href="/customers">"Back to the customers"</a></p>
        }
        .into_any();
    }
    match page.view {
        None => view! { <Upload max_mb=page.max_mb/> }.into_any(),
        Some(v) => match v.stage.clone() {
            ImportStage::Preview { mapping, lines } => {
                view! { <Preview view=v mapping=mapping.columns lines skip_bad=page.skip_bad/> }
                    .into_any()
            }
            ImportStage::Running {
                fraction,
                rows_done,
            } => view! { <Running view=v fraction rows_done/> }.into_any(),
            ImportStage::Done {
                created,
                updated,
                skipped,
                errors,
            } => view! {
                <p class="success" role="status">
                    {format!(
                        "Imported {}: {created} new customer{}, {updated} updated.",
                        v.file_name,
                        if created == 1 { "" } else { "s" },
                    )}
                </p>
                {(skipped > 0).then(|| view! {
                    <p>{format!("{skipped} line{} skipped:", if skipped == 1 { " was" } else { "s were" })}</p>
                    <Errors errors total=skipped/>
                })}
                <p><a href="/customers">"See the customers"</a> " · " <a href="/customers/import">"Import another file"</a></p>
            }
            .into_any(),
            ImportStage::Failed {
                message,
                bad_lines,
                errors,
            } => view! {
                <p class="error" role="alert">{message}</p>
                {(bad_lines > 0).then(|| view! { <Errors errors total=bad_lines/> })}
                <p><a href="/customers/import">"Upload a file"</a></p>
            }
            .into_any(),
        },
    }
}

#[component]
fn Upload(max_mb: u64) -> impl IntoView {
    view! {
        <p>
            "A CSV file (UTF-8) whose first line names the columns, in any order: name, phone, email, "
            "telegram chat id, whatsapp id, tags, robot groups, assignee email, time zone, opted out. "
            "Customers are matched by phone or email, so importing a file again updates them instead of adding them twice."
        </p>
        <form method="post" action="/customers/import" enctype="multipart/form-data" class="upload">
            <label for="file">{format!("CSV file (up to {max_mb} MB)")}</label>
            <input id="file" type="file" name="file" accept=".csv,text/csv" required/>
            <button type="submit">"Upload and preview"</button>
        </form>
    }
}

#[component]
fn Preview(
    view: ImportView,
    mapping: Vec<(String, Option<Column>)>,
    lines: Vec<PreviewLine>,
    skip_bad: bool,
) -> impl IntoView {
    let action = format!("/customers/import/{}", view.id);
    let width = mapping.len();
    let bad = lines.iter().filter(|l| l.problem.is_some()).count();
    view! {
        <p>{format!("{} · {}", view.file_name, size(view.file_bytes))}</p>
        <form method="post" action=action class="import-preview">
            <h2>"Columns"</h2>
            <p class="muted">"Herald guessed what each column holds from its header. Change any that are wrong; columns set to “Ignore” are not imported."</p>
            <table class="mapping">
                <thead><tr><th scope="col">"Column in the file"</th><th scope="col">"Imported as"</th></tr></thead>
                <tbody>
                    {mapping.into_iter().enumerate().map(|(i, (header, chosen))| {
                        let select_id = format!("col_{i}");
                        view! {
                            <tr>
                                <td><label for=select_id.clone()>{if header.is_empty() { format!("(column {})", i + 1) } else { header }}</label></td>
                                <td>
                                    <select id=select_id.clone() name=select_id>
                                        <option value="" selected=chosen.is_none()>"Ignore"</option>
                                        {Column::ALL.into_iter().map(|c| view! {
                                            <option value=c.key() selected=chosen == Some(c)>{c.label()}</option>
                                        }).collect_view()}
                                    </select>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <h2>{format!("First {} lines", lines.len())}</h2>
            {(bad > 0).then(|| view! {
                <p class="error">{format!("{bad} of these lines cannot be imported as they are (see the last column).")}</p>
            })}
            <div class="table-scroll">
                <table class="preview">
                    <thead><tr><th scope="col">"Line"</th>{(0..width).map(|i| view! { <th scope="col">{format!("{}", i + 1)}</th> }).collect_view()}<th scope="col">"Check"</th></tr></thead>
                    <tbody>
                        {lines.into_iter().map(|l| {
                            let ok = l.problem.is_none();
                            view! {
                                <tr class:bad=!ok>
                                    <td>{l.line}</td>
                                    {(0..width).map(|i| view! { <td>{l.cells.get(i).cloned().unwrap_or_default()}</td> }).collect_view()}
                                    <td>{l.problem.unwrap_or_else(|| "OK".into())}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <fieldset>
                <legend>"If some lines cannot be imported"</legend>
                <label><input type="checkbox" name="skip_bad" checked=skip_bad/>" Skip them and import the rest (otherwise nothing is imported and every bad line is listed)"</label>
            </fieldset>
            <div class="actions">
                <button type="submit" name="action" value="start">"Import"</button>
                <button type="submit" name="action" value="check" class="secondary">"Update preview"</button>
                <button type="submit" name="action" value="discard" class="link" formnovalidate=true>"Cancel"</button>
            </div>
        </form>
    }
}

#[component]
fn Running(view: ImportView, fraction: f64, rows_done: u64) -> impl IntoView {
    let percent = (fraction * 100.0).floor() as u32;
    view! {
        // Reloads the page each second until the import is over.
        <Meta http_equiv="refresh" content="1"/>
        <p>{format!("Importing {} …", view.file_name)}</p>
        <label for="import-progress">{format!("{percent}% read · {rows_done} customers stored so far")}</label>
        <progress id="import-progress" max="100" value=percent.to_string()>{format!("{percent}%")}</progress>
        <p class="muted">"Nothing is visible to others until the whole file is in. You can leave this page; the import goes on."</p>
    }
}

#[component]
fn Errors(errors: Vec<LineError>, total: u64) -> impl IntoView {
    let shown = errors.len() as u64;
    view! {
        <table class="line-errors">
            <thead><tr><th scope="col">"Line"</th><th scope="col">"Problem"</th></tr></thead>
            <tbody>
                {errors.into_iter().map(|e| view! { <tr><td>{e.line}</td><td>{e.message}</td></tr> }).collect_view()}
            </tbody>
        </table>
        {(total > shown).then(|| view! { <p class="muted">{format!("… and {} more.", total - shown)}</p> })}
    }
}

fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}
