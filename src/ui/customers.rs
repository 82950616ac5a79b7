//! The customers page: everyone Herald can send to, searchable and filterable by tag.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::customers::list_customers;
use crate::model::list_query::MAX_SEARCH_CHARS;
use crate::model::{CustomerAnchor, CustomerPage, CustomerRow};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn CustomersPage() -> impl IntoView {
    let query = use_query_map();
    let (q, tag, after, before) =
        query.with_untracked(|m| (m.get("q"), m.get("tag"), m.get("after"), m.get("before")));
    let (notice, error) = query.with_untracked(|m| (m.get("notice"), m.get("error")));
    let search = q.clone().unwrap_or_default();
    let page = Resource::new(
        move || (q.clone(), tag.clone(), after.clone(), before.clone()),
        |(q, tag, after, before)| list_customers(q, tag, after, before),
    );
    view! {
        <Title text="Customers · Herald"/>
        <AppHeader current="customers"/>
        <main>
            <div class="page-head">
                <h1>"Customers"</h1>
            </div>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading customers…"</p> }>
                {move || {
                    let search = search.clone();
                    Suspend::new(async move {
                        page_or_error(page.await, |p| view! { <CustomerList page=p search/> }.into_any())
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn CustomerList(page: CustomerPage, search: String) -> impl IntoView {
    let chosen = page.query.tag.clone().unwrap_or_default();
    let can_tag = page.can_tag;
    let tag_names = page.all_tags.clone();
    // Back to this very page (search, filter and position) after tagging.
    let back = page.query.href(page.query.anchor);
    // The same filter as the page, without the page position.
    let export =
        page.query
            .href(CustomerAnchor::First)
            .replacen("/customers", "/customers/export.csv", 1);
    let empty = page.rows.is_empty();
    view! {
        <form method="get" action="/customers" class="search" role="search">
            <label for="q" class="visually-hidden">"Search customers"</label>
            <input
                id="q"
                type="search"
                name="q"
                placeholder="Search by name, phone or email"
                maxlength=MAX_SEARCH_CHARS.to_string()
                value=search
            />
            <label for="tag" class="visually-hidden">"Tag"</label>
            <select id="tag" name="tag">
                <option value="" selected=chosen.is_empty()>"Any tag"</option>
                {page.all_tags.into_iter().map(|t| {
                    let selected = t == chosen;
                    view! { <option value=t.clone() selected=selected>{t.clone()}</option> }
                }).collect_view()}
            </select>
            <button type="submit">"Search"</button>
        </form>
        {page.notices.into_iter().map(|n| view! { <p class="notice" role="status">{n}</p> }).collect_view()}
        <p class="actions">
            <a href=export download="customers.csv">"Export these customers (CSV)"</a>
            {can_tag.then(|| view! { " · " <a href="/customers/import">"Import customers (CSV)"</a> })}
        </p>
        {can_tag.then(|| view! {
            <div class="bulk" role="group" aria-label="Tag the selected customers">
                <label for="bulk-tag">"Tag for the ticked customers"</label>
                <input id="bulk-tag" name="tag" form="bulk" list="tag-names" maxlength="100" required/>
                <datalist id="tag-names">
                    {tag_names.into_iter().map(|t| view! { <option value=t></option> }).collect_view()}
                </datalist>
                <button type="submit" form="bulk" name="action" value="add">"Add tag"</button>
                <button type="submit" form="bulk" name="action" value="remove">"Remove tag"</button>
            </div>
        })}
        <form method="post" action="/customers/tags" id="bulk">
            <input type="hidden" name="back" value=back/>
        </form>
        <table class="customers">
            <caption class="visually-hidden">"Customers"</caption>
            <thead>
                <tr>
                    {can_tag.then(|| view! { <th scope="col"><span class="visually-hidden">"Select"</span></th> })}
                    <th scope="col">"Name"</th>
                    <th scope="col">"Phone"</th>
                    <th scope="col">"Email"</th>
                    <th scope="col">"Tags"</th>
                    <th scope="col">"Robot groups"</th>
                    <th scope="col">"Assignee"</th>
                    <th scope="col">"Opted out"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|r| view! { <CustomerLine row=r can_tag/> }).collect_view()}
            </tbody>
        </table>
        {empty.then(|| view! { <p class="empty">"No customers match."</p> })}
        <nav class="pager" aria-label="Pages">
            {page.prev.map(|h| view! { <a href=h rel="prev">"← Previous"</a> })}
            {page.next.map(|h| view! { <a href=h rel="next">"Next →"</a> })}
        </nav>
    }
}

#[component]
fn CustomerLine(row: CustomerRow, can_tag: bool) -> impl IntoView {
    let dash = || view! { <span class="muted">"—"</span> };
    let select = can_tag.then(|| {
        let label = format!("Select {}", row.name);
        view! {
            <td><input type="checkbox" name="id" form="bulk" value=row.id.to_string() aria-label=label/></td>
        }
    });
    view! {
        <tr data-id=row.id>
            {select}
            <td class="name"><a href=format!("/customers/{}", row.id)>{row.name}</a></td>
            <td>{row.phone.map(|p| p.into_any()).unwrap_or_else(|| dash().into_any())}</td>
            <td>{row.email.map(|e| e.into_any()).unwrap_or_else(|| dash().into_any())}</td>
            <td class="tags">
                {row.tags.into_iter().map(|t| view! { <span class="chip">{t}</span> }).collect_view()}
            </td>
            <td class="groups">
                {row.groups.into_iter().map(|g| view! { <span class="chip chip-bot">{g}</span> }).collect_view()}
            </td>
            <td>{row.assignee.map(|a| a.into_any()).unwrap_or_else(|| dash().into_any())}</td>
            <td>{if row.opted_out { "Yes" } else { "" }}</td>
        </tr>
    }
}
