//! The wizard's interactive parts, as islands: the message editor (emoji picker and a live
//! preview for a sample recipient), the attachment picker (drag-and-drop with an upload
//! progress bar) and the audience editor (conditions with a live count). Each renders the same
//! form fields the plain form posts, so every step still works without JavaScript.

use leptos::prelude::*;
#[cfg(feature = "hydrate")]
use wasm_bindgen::JsCast;

use crate::model::audience::{AudienceRule, Condition, Field, MAX_CONDITIONS, Match, Op};
use crate::model::channel::ChannelKind;
use crate::model::compose::{AttachmentRef, MAX_ATTACHMENTS, MAX_BODY_CHARS};
use crate::model::personalize;

/// Emoji offered by the picker, with the names screen readers announce.
const EMOJI: [(&str, &str); 32] = [
    ("😀", "grinning face"),
    ("😊", "smiling face"),
    ("😉", "winking face"),
    ("😍", "heart eyes"),
    ("🥳", "party face"),
    ("😎", "cool face"),
    ("🤔", "thinking face"),
    ("😢", "crying face"),
    ("👋", "waving hand"),
    ("👍", "thumbs up"),
    ("🙏", "folded hands"),
    ("👏", "clapping hands"),
    ("🤝", "handshake"),
    ("💪", "flexed biceps"),
    ("❤️", "red heart"),
    ("✨", "sparkles"),
    ("🎉", "party popper"),
    ("🎁", "gift"),
    ("🔥", "fire"),
    ("⭐", "star"),
    ("✅", "check mark"),
    ("❗", "exclamation mark"),
    ("📣", "megaphone"),
    ("💬", "speech balloon"),
    ("📅", "calendar"),
    ("⏰", "alarm clock"),
    ("🛒", "shopping cart"),
    ("💰", "money bag"),
    ("🏷️", "label"),
    ("🚚", "delivery truck"),
    ("📦", "package"),
    ("🌷", "tulip"),
];

/// True once the island has hydrated: controls that only work with JavaScript appear then,
/// and the plain-form fallbacks step aside.
fn hydrated() -> ReadSignal<bool> {
    let (on, set) = signal(false);
    Effect::new(move |_| set.set(true));
    on
}

/// Message text with an emoji picker and a preview filled in for `sample_name`.
#[cfg_attr(feature = "hydrate", island(lazy))]
#[cfg_attr(not(feature = "hydrate"), island)]
pub fn MessageEditor(body: String, sample_name: String) -> impl IntoView {
    let live = hydrated();
    let text = RwSignal::new(body.clone());
    let area = NodeRef::<leptos::html::Textarea>::new();
    let sample_for_preview = sample_name.clone();
    let preview = move || {
        let t = text.get();
        if t.trim().is_empty() {
            "(The message is empty.)".to_string()
        } else {
            personalize::render(&t, &sample_for_preview)
        }
    };
    let problem = move || personalize::problem(&text.get());
    let sample_for_fit = sample_name.clone();
    // What the message becomes on the channels with limits of their own, as it is typed.
    let fits = move || {
        let sent = personalize::render(text.get().trim_end(), &sample_for_fit);
        [
            ChannelKind::Sms,
            ChannelKind::Whatsapp,
            ChannelKind::Telegram,
        ]
        .map(|kind| crate::model::fit::fit(kind, &sent, false))
    };
    let insert = move |emoji: &'static str| {
        #[cfg(feature = "hydrate")]
        if let Some(el) = area.get_untracked() {
            // Selection offsets count UTF-16 code units.
            let units: Vec<u16> = el.value().encode_utf16().collect();
            let len = units.len() as u32;
            let start = el.selection_start().ok().flatten().unwrap_or(len).min(len) as usize;
            let end = el.selection_end().ok().flatten().unwrap_or(len).min(len) as usize;
            let mut joined: Vec<u16> = units[..start].to_vec();
            joined.extend(emoji.encode_utf16());
            joined.extend_from_slice(&units[end.max(start)..]);
            let value = String::from_utf16_lossy(&joined);
            el.set_value(&value);
            text.set(value);
            let caret = (start + emoji.encode_utf16().count()) as u32;
            let _ = el.set_selection_range(caret, caret);
            let _ = el.focus();
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (emoji, area);
    };
    let who = if sample_name.trim().is_empty() {
        "a customer without a name".to_string()
    } else {
        sample_name.clone()
    };
    view! {
        <label for="body">"Message"</label>
        <textarea id="body" name="body" rows="6" maxlength=MAX_BODY_CHARS.to_string() node_ref=area
            aria-describedby="body-help"
            on:input=move |ev| text.set(event_target_value(&ev))>{body}</textarea>
        <p class="muted" id="body-help">
            "Personalise with {{first_name}} or {{name}}; a fallback for customers without a name goes after a bar: {{first_name|there}}."
        </p>
        <details class="emoji-picker" hidden=move || !live.get()>
            <summary>"Insert emoji"</summary>
            <div role="group" aria-label="Emoji" class="emoji-grid">
                {EMOJI.iter().map(|(e, name)| {
                    let e: &'static str = e;
                    view! {
                        <button type="button" class="emoji" aria-label=format!("Insert {name}") title=*name
                            on:click=move |_| insert(e)>{e}</button>
                    }
                }).collect_view()}
            </div>
        </details>
        {move || problem().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        <section class="fit" aria-label="How it fits each channel">
            <ul class="muted small" data-testid="channel-fit">
                {move || fits().into_iter().map(|f| view! {
                    <li data-kind=f.kind.as_str()>
                        <strong>{fit_name(f.kind)}</strong>": "{f.summary}
                        {f.refused.map(|r| view! { <span class="error">" "{r}</span> })}
                    </li>
                }).collect_view()}
            </ul>
        </section>
        <section class="preview" aria-label="Preview">
            <p class="muted">{format!("Preview for {who}")}</p>
            <p class="bubble" aria-live="polite">{preview}</p>
        </section>
    }
}

/// A channel kind's short name in the editor's fit list.
fn fit_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Sms => "SMS",
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Telegram => "Telegram",
        _ => kind.label(),
    }
}

/// An upload in progress (or failed) in the attachment picker.
#[derive(Clone, Debug, PartialEq)]
struct Upload {
    key: u32,
    name: String,
    /// 0–100.
    percent: u32,
    error: Option<String>,
}

/// The broadcast's files: listed with thumbnails and a Remove button each; new ones come by
/// drag-and-drop or the file picker and upload at once with a progress bar. Without
/// JavaScript the picker posts with the form ("Attach") and Remove posts too.
#[cfg_attr(feature = "hydrate", island(lazy))]
#[cfg_attr(not(feature = "hydrate"), island)]
pub fn AttachmentPicker(attachments: Vec<AttachmentRef>) -> impl IntoView {
    let live = hydrated();
    let files = RwSignal::new(attachments);
    let uploads = RwSignal::new(Vec::<Upload>::new());
    let over = RwSignal::new(false);
    let next_key = StoredValue::new(0u32);
    let input = NodeRef::<leptos::html::Input>::new();

    let start_upload = move |file: FileHandle| upload_file(file, files, uploads, next_key);
    let take_files = move |list: Option<FileList>| {
        for f in files_of(list) {
            start_upload(f);
        }
        // The chosen file is uploaded already: the form must not post it again.
        #[cfg(feature = "hydrate")]
        if let Some(el) = input.get_untracked() {
            el.set_value("");
        }
    };

    view! {
        <fieldset class="attachments">
            <legend>"Attachments"</legend>
            <input type="hidden" name="attachments_shown" value="1"/>
            <ul class="attachments">
                <For each=move || files.get() key=|a| a.id.clone() let:a>
                    <AttachedFile a=a files=files/>
                </For>
            </ul>
            <ul class="uploads" aria-live="polite">
                <For each=move || uploads.get() key=|u| (u.key, u.percent, u.error.clone()) let:u>
                    <UploadLine u=u/>
                </For>
            </ul>
            <div class="dropzone" class:over=move || over.get()
                on:dragover=move |ev| { ev.prevent_default(); over.set(true); }
                on:dragleave=move |_| over.set(false)
                on:drop=move |ev| {
                    ev.prevent_default();
                    over.set(false);
                    take_files(dropped_files(&ev));
                }>
                <label for="file">"Add a file (mp3, png, jpg, gif, mp4, m4a, webm, pdf, vcf, ogg, 3gpp, wav, mov, aac)"</label>
                <input id="file" type="file" name="file" multiple=move || live.get() node_ref=input
                    accept=".mp3,.png,.jpg,.jpeg,.gif,.mp4,.m4a,.webm,.pdf,.vcf,.ogg,.3gp,.3gpp,.wav,.mov,.aac"
                    on:change=move |_| take_files(chosen_files(input))/>
                <p class="muted" hidden=move || !live.get()>"or drop files here; they upload at once."</p>
                <button type="submit" name="go" value="attach" class="secondary" hidden=move || live.get()>"Attach"</button>
            </div>
        </fieldset>
    }
}

/// Starts uploading `file` (unless the broadcast has its files already): its progress shows
/// in `uploads`, and once stored it joins `files`.
fn upload_file(
    file: FileHandle,
    files: RwSignal<Vec<AttachmentRef>>,
    uploads: RwSignal<Vec<Upload>>,
    next_key: StoredValue<u32>,
) {
    let key = next_key.get_value();
    next_key.set_value(key + 1);
    let name = file_name(&file);
    let full = files.with_untracked(Vec::len)
        + uploads.with_untracked(|u| u.iter().filter(|u| u.error.is_none()).count())
        >= MAX_ATTACHMENTS;
    let error = full.then(|| format!("A broadcast can carry at most {MAX_ATTACHMENTS} files."));
    uploads.update(|u| {
        u.push(Upload {
            key,
            name,
            percent: 0,
            error: error.clone(),
        })
    });
    if error.is_some() {
        return;
    }
    let set = move |change: Box<dyn FnOnce(&mut Upload)>| {
        uploads.update(|u| {
            if let Some(x) = u.iter_mut().find(|x| x.key == key) {
                change(x);
            }
        })
    };
    send_file(
        file,
        move |percent| set(Box::new(move |x| x.percent = percent)),
        move |result| match result {
            Ok(a) => {
                uploads.update(|u| u.retain(|x| x.key != key));
                files.update(|f| f.push(a));
            }
            Err(message) => set(Box::new(move |x| x.error = Some(message))),
        },
    );
}

/// A file the broadcast carries, with a remove button (a plain form field too).
#[component]
fn AttachedFile(a: AttachmentRef, files: RwSignal<Vec<AttachmentRef>>) -> impl IntoView {
    let url = format!("/attachments/{}", a.id);
    let label = format!("Remove {}", a.name);
    let id = a.id.clone();
    view! {
        <li>
            <input type="hidden" name="attachment" value=a.id.clone()/>
            {a.is_image().then(|| view! { <img src=url.clone() alt="" width="64" height="64" loading="lazy"/> })}
            <a href=url>{a.name.clone()}</a>
            <span class="muted">{format!(" {:.0} KB", a.size as f64 / 1024.0)}</span>
            <button type="submit" name="go" value=format!("detach_{}", a.id) class="link" aria-label=label
                on:click=move |ev| {
                    ev.prevent_default();
                    files.update(|f| f.retain(|x| x.id != id));
                }>"Remove"</button>
        </li>
    }
}

/// An upload in progress, or why it failed.
#[component]
fn UploadLine(u: Upload) -> impl IntoView {
    view! {
        <li>
            {u.name.clone()}
            {match u.error.clone() {
                None => view! {
                    " "<progress max="100" value=u.percent.to_string() aria-label=format!("Uploading {}", u.name)>{format!("{}%", u.percent)}</progress>
                }.into_any(),
                Some(e) => view! { <span class="error" role="alert">{format!(": {e}")}</span> }.into_any(),
            }}
        </li>
    }
}

#[cfg(feature = "hydrate")]
type FileHandle = web_sys::File;
#[cfg(not(feature = "hydrate"))]
type FileHandle = ();
#[cfg(feature = "hydrate")]
type FileList = web_sys::FileList;
#[cfg(not(feature = "hydrate"))]
type FileList = ();

#[cfg(feature = "hydrate")]
fn file_name(f: &FileHandle) -> String {
    f.name()
}
#[cfg(not(feature = "hydrate"))]
fn file_name(_: &FileHandle) -> String {
    String::new()
}

#[cfg(feature = "hydrate")]
fn files_of(list: Option<FileList>) -> Vec<FileHandle> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
        .unwrap_or_default()
}
#[cfg(not(feature = "hydrate"))]
fn files_of(_: Option<FileList>) -> Vec<FileHandle> {
    Vec::new()
}

#[cfg(feature = "hydrate")]
fn dropped_files(ev: &leptos::ev::DragEvent) -> Option<FileList> {
    ev.data_transfer().and_then(|d| d.files())
}
#[cfg(not(feature = "hydrate"))]
fn dropped_files(_: &leptos::ev::DragEvent) -> Option<FileList> {
    None
}

#[cfg(feature = "hydrate")]
fn chosen_files(input: NodeRef<leptos::html::Input>) -> Option<FileList> {
    input.get_untracked().and_then(|el| el.files())
}
#[cfg(not(feature = "hydrate"))]
fn chosen_files(_: NodeRef<leptos::html::Input>) -> Option<FileList> {
    None
}

/// Uploads one file to `POST /attachments`, reporting progress (0–100) and then the stored
/// attachment or the server's reason for refusing it.
#[cfg(feature = "hydrate")]
fn send_file(
    file: FileHandle,
    progress: impl Fn(u32) + 'static,
    done: impl FnOnce(Result<AttachmentRef, String>) + 'static,
) {
    use wasm_bindgen::closure::Closure;
    let failed = "The upload failed; check the connection and try again.";
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return done(Err(failed.into()));
    };
    let Ok(form) = web_sys::FormData::new() else {
        return done(Err(failed.into()));
    };
    if form
        .append_with_blob_and_filename("file", &file, &file.name())
        .is_err()
        || xhr.open("POST", "/attachments").is_err()
    {
        return done(Err(failed.into()));
    }
    if let Ok(up) = xhr.upload() {
        let on_progress =
            Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                if e.length_computable() && e.total() > 0.0 {
                    progress((e.loaded() / e.total() * 100.0).round() as u32);
                }
            });
        up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        on_progress.forget();
    }
    let request = xhr.clone();
    let on_end = Closure::once(move || {
        let status = request.status().unwrap_or(0);
        let text = request.response_text().ok().flatten().unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let result = if (200..300).contains(&status) {
            serde_json::from_value::<AttachmentRef>(value).map_err(|_| failed.to_string())
        } else if status == 401 {
            Err("Your session has ended; sign in again.".to_string())
        } else {
            Err(value
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or(failed)
                .to_string())
        };
        done(result);
    });
    xhr.set_onloadend(Some(on_end.as_ref().unchecked_ref()));
    on_end.forget();
    if xhr.send_with_opt_form_data(Some(&form)).is_err() {
        web_sys::console::warn_1(&"upload could not start".into());
    }
}
#[cfg(not(feature = "hydrate"))]
fn send_file(
    _: FileHandle,
    _: impl Fn(u32) + 'static,
    _: impl FnOnce(Result<AttachmentRef, String>) + 'static,
) {
}

/// One condition row in the editor; `key` names its fields (`cond_{key}_…`).
#[derive(Clone, Debug, PartialEq)]
struct Row {
    key: usize,
    field: Field,
    op: Op,
    id: Option<i64>,
}

/// "All/Any" and the condition rows, with the matching count and a sample of names that follow
/// every change. Without JavaScript, "Add condition" and "Remove" post the form, which saves
/// and shows the count.
#[cfg_attr(feature = "hydrate", island(lazy))]
#[cfg_attr(not(feature = "hydrate"), island)]
pub fn AudienceEditor(
    rule: AudienceRule,
    tags: Vec<(i64, String)>,
    groups: Vec<(i64, String)>,
    matching: i64,
    sample: Vec<String>,
) -> impl IntoView {
    let live = hydrated();
    let any = RwSignal::new(rule.matching == Match::Any);
    let initial: Vec<Row> = rule
        .conditions
        .iter()
        .map(|c| (c.field, c.op, Some(c.id)))
        .chain(std::iter::once((Field::Tag, Op::Is, None)))
        .enumerate()
        .map(|(key, (field, op, id))| Row { key, field, op, id })
        .collect();
    let rows = Rows {
        list: RwSignal::new(initial.clone()),
        next_key: StoredValue::new(initial.len()),
    };
    let count = RwSignal::new(Some(matching));
    let names = RwSignal::new(sample);
    let failed = RwSignal::new(None::<String>);
    let choices = Choices {
        tags: StoredValue::new(tags),
        groups: StoredValue::new(groups),
        live,
    };
    recount_on_change(any, rows.list, rule.frozen, (count, names, failed));
    view! {
        <fieldset>
            <legend>"Who receives it"</legend>
            <label for="match">"Customers matching"</label>
            <select id="match" name="match" on:change=move |ev| any.set(event_target_value(&ev) == "any")>
                <option value="all" selected=!any.get_untracked()>"All conditions"</option>
                <option value="any" selected=any.get_untracked()>"Any condition"</option>
            </select>
            <table class="conditions">
                <thead><tr><th scope="col">"What"</th><th scope="col">"Is"</th><th scope="col">"Which"</th><th scope="col"><span class="visually-hidden">"Remove"</span></th></tr></thead>
                <tbody>
                    <For each=move || rows.list.get() key=|r| r.key let:row>
                        <ConditionLine row=row rows=rows choices=choices/>
                    </For>
                </tbody>
            </table>
            <button type="submit" name="go" value="stay" class="secondary"
                disabled=move || live.get() && rows.list.with(|r| r.len() >= MAX_CONDITIONS)
                on:click=move |ev| {
                    ev.prevent_default();
                    if rows.list.with(|r| r.len() < MAX_CONDITIONS) {
                        rows.add();
                    }
                }>"Add condition"</button>
            <button type="submit" name="go" value="stay" class="secondary" hidden=move || live.get()>"Apply and count"</button>
        </fieldset>
        <p class="audience-count" role="status" aria-busy=move || count.get().is_none().to_string()>
            {move || match count.get() {
                Some(n) => format!("{n} customer{} match (opted-out customers are never included)", if n == 1 { "" } else { "s" }),
                None => "Counting…".to_string(),
            }}
        </p>
        {move || failed.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <p class="muted sample">
            {move || names.with(|n| if n.is_empty() { String::new() } else { format!("For example: {}", n.join(", ")) })}
        </p>
    }
}

/// The editor's condition rows and the key the next one gets.
#[derive(Clone, Copy)]
struct Rows {
    list: RwSignal<Vec<Row>>,
    next_key: StoredValue<usize>,
}

impl Rows {
    /// Appends an empty row.
    fn add(self) {
        let k = self.next_key.get_value();
        self.next_key.set_value(k + 1);
        self.list.update(|r| {
            r.push(Row {
                key: k,
                field: Field::Tag,
                op: Op::Is,
                id: None,
            })
        });
    }

    /// Changes row `key`.
    fn set(self, key: usize, change: impl FnOnce(&mut Row)) {
        self.list.update(|r| {
            if let Some(row) = r.iter_mut().find(|r| r.key == key) {
                change(row);
            }
        })
    }

    /// Removes row `key`, leaving an empty one when it was the last.
    fn remove(self, key: usize) {
        self.list.update(|r| r.retain(|x| x.key != key));
        if self.list.with(Vec::is_empty) {
            self.add();
        }
    }

    /// The rule the complete rows make.
    fn rule(self, any: bool) -> AudienceRule {
        AudienceRule {
            matching: if any { Match::Any } else { Match::All },
            conditions: self.list.with(|r| {
                r.iter()
                    .filter_map(|r| {
                        r.id.map(|id| Condition {
                            field: r.field,
                            op: r.op,
                            id,
                        })
                    })
                    .collect()
            }),
            frozen: None,
        }
    }
}

/// What the value menus offer, and whether the island is live.
#[derive(Clone, Copy)]
struct Choices {
    tags: StoredValue<Vec<(i64, String)>>,
    groups: StoredValue<Vec<(i64, String)>>,
    live: ReadSignal<bool>,
}

/// Asks the server to count the audience again whenever the rule changes (not on the first
/// run: the server counted that); an answer to an older question is dropped.
type Shown = (
    RwSignal<Option<i64>>,
    RwSignal<Vec<String>>,
    RwSignal<Option<String>>,
);

/// Recounts whenever the rows or the match change; a follow-up's `frozen` set stays part of
/// the rule asked about.
fn recount_on_change(
    any: RwSignal<bool>,
    list: RwSignal<Vec<Row>>,
    frozen: Option<i64>,
    (count, names, failed): Shown,
) {
    let rows = Rows {
        list,
        next_key: StoredValue::new(0),
    };
    let generation = StoredValue::new(0u64);
    Effect::new(move |previous: Option<AudienceRule>| {
        let mut rule = rows.rule(any.get());
        rule.frozen = frozen;
        if previous.as_ref().is_some_and(|p| *p != rule) {
            generation.update_value(|g| *g += 1);
            let mine = generation.get_value();
            count.set(None);
            let asked = rule.clone();
            leptos::task::spawn_local(async move {
                let answer = crate::api::compose::preview_audience(asked).await;
                if generation.get_value() != mine {
                    return; // a newer question is on its way
                }
                match answer {
                    Ok(p) => {
                        failed.set(None);
                        count.set(Some(p.matching));
                        names.set(p.sample);
                    }
                    Err(e) => failed.set(Some(e.to_string())),
                }
            });
        }
        rule
    });
}

/// One condition: kind, test, value and a remove button (each a plain form field too).
#[component]
fn ConditionLine(row: Row, rows: Rows, choices: Choices) -> impl IntoView {
    let key = row.key;
    let n = move || {
        rows.list
            .with(|r| r.iter().position(|x| x.key == key).unwrap_or(0) + 1)
    };
    let field = RwSignal::new(row.field);
    let chosen = row.id.map(|id| match row.field {
        Field::Tag => format!("tag:{id}"),
        Field::RobotGroup => format!("robot_group:{id}"),
    });
    let live = choices.live;
    view! {
        <tr>
            <td>
                <select name=format!("cond_{key}_field") aria-label=move || format!("Condition {} kind", n())
                    on:change=move |ev| {
                        let f = if event_target_value(&ev) == "robot_group" { Field::RobotGroup } else { Field::Tag };
                        field.set(f);
                        rows.set(key, move |r| { if r.field != f { r.field = f; r.id = None; } });
                    }>
                    <option value="tag" selected=row.field == Field::Tag>"Tag"</option>
                    <option value="robot_group" selected=row.field == Field::RobotGroup>"Robot group"</option>
                </select>
            </td>
            <td>
                <select name=format!("cond_{key}_op") aria-label=move || format!("Condition {} test", n())
                    on:change=move |ev| {
                        let o = if event_target_value(&ev) == "is_not" { Op::IsNot } else { Op::Is };
                        rows.set(key, move |r| r.op = o);
                    }>
                    <option value="is" selected=row.op == Op::Is>"is"</option>
                    <option value="is_not" selected=row.op == Op::IsNot>"is not"</option>
                </select>
            </td>
            <td>
                <select name=format!("cond_{key}_id") aria-label=move || format!("Condition {} value", n())
                    on:change=move |ev| {
                        let parsed = Field::parse_choice(&event_target_value(&ev));
                        rows.set(key, move |r| {
                            r.id = parsed.map(|(_, id)| id);
                            if let Some((f, _)) = parsed { r.field = f; }
                        });
                    }>
                    <option value="" selected=chosen.is_none()>"(choose)"</option>
                    // Before hydration both lists are offered (the kind is read from the value);
                    // once live, only the chosen kind's.
                    <optgroup label="Tags" hidden=move || live.get() && field.get() != Field::Tag>
                        {value_options(choices.tags.get_value(), "tag", chosen.clone())}
                    </optgroup>
                    <optgroup label="Robot groups" hidden=move || live.get() && field.get() != Field::RobotGroup>
                        {value_options(choices.groups.get_value(), "robot_group", chosen.clone())}
                    </optgroup>
                </select>
            </td>
            <td>
                <button type="submit" name="go" value=format!("remove_{key}") class="link"
                    aria-label=move || format!("Remove condition {}", n())
                    on:click=move |ev| {
                        ev.prevent_default();
                        rows.remove(key);
                    }>"Remove"</button>
            </td>
        </tr>
    }
}

/// A value menu's options for one kind (`tag:3`), the chosen one selected.
fn value_options(list: Vec<(i64, String)>, kind: &str, chosen: Option<String>) -> impl IntoView {
    list.into_iter()
        .map(|(id, name)| {
            let v = format!("{kind}:{id}");
            let sel = chosen.as_deref() == Some(v.as_str());
            view! { <option value=v selected=sel>{name}</option> }
        })
        .collect_view()
}
