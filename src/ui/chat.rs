//! A customer's chat (`/customers/{id}/chat`): the conversation across channels, broadcast
//! messages where they were sent, a "New" marker before what arrived since staff last looked,
//! new messages live (server-sent events), a reply box and "Assign to me". Without JavaScript
//! the reply and the assignment are plain forms, and a reload shows new messages.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::chat::{AssignToMe, ChatReply, chat_reply, customer_chat};
use crate::model::chat::{ChatMessage, ChatView};
use crate::ui::fragments::chat_line;
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn ChatPage() -> impl IntoView {
    let id = use_params_map()
        .with_untracked(|p| p.get("id"))
        .and_then(|id| id.parse::<i64>().ok())
        .unwrap_or(0);
    let (error, draft, before) = use_query_map().with_untracked(|q| {
        (
            q.get("error"),
            q.get("draft"),
            q.get("before").and_then(|b| b.parse::<i64>().ok()),
        )
    });
    let data = Resource::new(
        move || (id, before),
        |(id, before)| customer_chat(id, before),
    );
    view! {
        <Title text="Chat · Herald"/>
        <AppHeader current="customers"/>
        <main class="narrow">
            <Suspense fallback=|| view! { <p class="muted">"Loading the conversation…"</p> }>
                {move || {
                    let (error, draft) = (error.clone(), draft.clone());
                    Suspend::new(async move {
                        page_or_error(data.await, |c| view! { <ChatBody chat=c error draft/> }.into_any())
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn ChatBody(chat: ChatView, error: Option<String>, draft: Option<String>) -> impl IntoView {
    let id = chat.customer_id;
    let assignee = match (&chat.assignee, chat.assigned_to_me) {
        (_, true) => "Assigned to you".to_string(),
        (Some(a), false) => format!("Assigned to {a}"),
        (None, false) => "Nobody is assigned".to_string(),
    };
    view! {
        <p><a href=format!("/customers/{id}")>"← Customer details"</a></p>
        <div class="page-head">
            <h1>{format!("Chat with {}", chat.name)}</h1>
            <span class="muted" data-testid="assignee">{assignee}</span>
            {(chat.can_reply && !chat.assigned_to_me).then(|| view! {
                <form method="post" action=AssignToMe::url() class="inline">
                    <input type="hidden" name="customer_id" value=id.to_string()/>
                    <button type="submit">"Assign to me"</button>
                </form>
            })}
        </div>
        {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
        {chat.earlier.map(|first| view! {
            <p><a href=format!("/customers/{id}/chat?before={first}")>"Earlier messages"</a></p>
        })}
        {chat.before.is_some().then(|| view! {
            <p><a href=format!("/customers/{id}/chat")>"Newest messages"</a></p>
        })}
        <LiveChat
            id=id
            last=chat.last_message_id
            can_reply=chat.can_reply
            reply_to=chat.reply_channel.clone()
            draft=draft.unwrap_or_default()
        >
            // The list is the island's child, not its own markup: an island's children sit in
            // a <leptos-children> element, which between <ol> and <li> breaks both the list's
            // semantics and the flex layout that puts staff on the right.
            <ol class="chat" id=CONVERSATION aria-label="Conversation" aria-live="polite">
                <ChatLines messages=chat.messages.clone()/>
            </ol>
        </LiveChat>
    }
}

/// The conversation as the server renders it, with the "New" marker before the first unread.
#[component]
fn ChatLines(messages: Vec<ChatMessage>) -> impl IntoView {
    let first_unread = messages.iter().position(|m| m.unread);
    if messages.is_empty() {
        return view! { <li class="muted empty">"No messages yet."</li> }.into_any();
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| chat_line(m, Some(i) == first_unread))
        .collect_view()
        .into_any()
}

/// The id of the conversation's list.
const CONVERSATION: &str = "conversation";

/// Appends a message's HTML to the conversation unless it is there already (by key).
fn append_once(key: &str, html: &str) {
    let Some(ol) = document().get_element_by_id(CONVERSATION) else {
        return;
    };
    let there = ol
        .query_selector(&format!("[data-key='{key}']"))
        .ok()
        .flatten()
        .is_some();
    if !there {
        if let Ok(Some(empty)) = ol.query_selector("li.empty") {
            empty.remove();
        }
        let _ = ol.insert_adjacent_html("beforeend", html);
    }
}

/// Listens to the conversation's server-sent events and hands each new message to `add`.
#[cfg(feature = "hydrate")]
fn follow_events(id: i64, last: i64, add: impl Fn(&str, &str) + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new(&format!("/customers/{id}/events?after={last}"))
    else {
        return;
    };
    let on_message =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(html) = e.data().as_string() {
                add(&e.last_event_id(), &html);
            }
        });
    let _ = source.add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref());
    // Islands pages are left by full navigations, which close the stream.
    on_message.forget();
    std::mem::forget(source);
}

/// Keeps the conversation current and sends replies. New messages arrive from
/// `GET /customers/{id}/events` (server-sent events) as HTML the server rendered, and are
/// appended once each (by key); a reply's answer carries its HTML too. So the browser bundle
/// has no message rendering code.
#[cfg_attr(feature = "hydrate", island(lazy))]
#[cfg_attr(not(feature = "hydrate"), island)]
fn LiveChat(
    id: i64,
    last: i64,
    can_reply: bool,
    reply_to: Result<String, String>,
    draft: String,
    children: Children,
) -> impl IntoView {
    let text = NodeRef::<leptos::html::Textarea>::new();
    let problem = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let add = move |key: &str, html: &str| append_once(key, html);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| follow_events(id, last, add));
    #[cfg(not(feature = "hydrate"))]
    let _ = last;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(area) = text.get_untracked() else {
            return;
        };
        let body = area.value();
        if body.trim().is_empty() || sending.get_untracked() {
            return;
        }
        sending.set(true);
        leptos::task::spawn_local(async move {
            match chat_reply(id, body).await {
                Ok(r) => {
                    add(&r.key, &r.html);
                    area.set_value("");
                    problem.set(None);
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
            sending.set(false);
        });
    };
    view! {
        {children()}
        {can_reply.then(|| match reply_to {
            Ok(channel) => view! {
                <form id="reply" method="post" action=ChatReply::url() class="reply" on:submit=submit>
                    <input type="hidden" name="customer_id" value=id.to_string()/>
                    <label for="reply-body">{format!("Reply on {channel}")}</label>
                    <textarea id="reply-body" name="body" rows="3" maxlength="4096" node_ref=text>{draft}</textarea>
                    {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
                    <button type="submit" class="primary" disabled=move || sending.get()>"Send reply"</button>
                </form>
            }.into_any(),
            Err(why) => view! { <p class="muted">{format!("No reply possible: {why}")}</p> }.into_any(),
        })}
    }
}
