//! The live pages' end of `GET /live` (server-sent events): one stream per page, opened when
//! its island hydrates. The browser reconnects a dropped stream by itself, and each new
//! connection starts with the current state, so nothing missed stays missed. No page asks the
//! server again on a timer.

use leptos::prelude::*;

/// Opens `url` as an event stream and calls `on` with the data of each `event`.
#[cfg(feature = "hydrate")]
pub fn follow(url: &str, event: &str, on: impl Fn(String) + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let handler = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
        if let Some(data) = e.data().as_string() {
            on(data);
        }
    });
    let _ = source.add_event_listener_with_callback(event, handler.as_ref().unchecked_ref());
    // Islands pages are left by full navigations, which close the stream.
    handler.forget();
    std::mem::forget(source);
}

/// A part of a page the server renders again as its broadcasts change (`src` names the
/// topic, `event` its event): each new rendering replaces the children.
#[cfg_attr(feature = "hydrate", island(lazy))]
#[cfg_attr(not(feature = "hydrate"), island)]
pub fn LiveFragment(src: String, event: String, children: Children) -> impl IntoView {
    let target = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        follow(&src, &event, move |html| {
            if let Some(el) = target.get_untracked() {
                el.set_inner_html(&html);
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (&src, &event);
    });
    view! { <div class="live" node_ref=target>{children()}</div> }
}
