"""Try it: one input (typed, uploaded or recorded) through a finished run's model, before and after."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore import plots
from tlcore.errors import TransferLabError
from ui import datasets
from ui.predict import after_model, reference_proba, top_k
from ui.runs import read_report, run_picker, visible_runs

st.title("Try it")
runs = [r for r in visible_runs(status="done") if (r.out / "model" / "model.safetensors").exists()
        and (r.config.get("task") or "classify") == "classify"]
if not runs:
    st.info("No finished classification run with a model yet. Start one from **Home** or **Fine-tune** "
            "(named-entity and speech-recognition runs are compared on the Compare page).")
    st.stop()
run = run_picker("Run", runs, key="try-run")
report = read_report(run) or {}
modality = run.config.get("modality", "text")
st.caption(f"{modality} · {report.get('backbone', '')} · {report.get('strategy', '')} · classes: "
           f"{', '.join(report.get('data', {}).get('classes', []))}")

item = None
if modality == "text":
    text = st.text_area("Type a text", key="try-text", placeholder="e.g. The battery died after two days.")
    item = text.strip() or None
elif modality == "image":
    up = st.file_uploader("Upload an image", type=["png", "jpg", "jpeg", "bmp", "webp"], key="try-image")
    if up is not None:
        item = str(datasets.save_upload(up.name, up.getvalue()))
        st.image(item, width=160)
else:
    c1, c2 = st.columns(2)
    up = c1.file_uploader("Upload a recording", type=["wav", "flac", "ogg", "mp3"], key="try-audio")
    rec = c2.audio_input("…or record one", key="try-record")
    src = rec or up
    if src is not None:
        item = str(datasets.save_upload(getattr(src, "name", None) or "recording.wav", src.getvalue()))
        st.audio(item)

if item is not None:
    try:
        model = after_model(run)
        after = model.predict_proba([item])[0]
        before = reference_proba(run, report, item) if report else None
    except TransferLabError as exc:
        st.error(str(exc))
        st.stop()
    except Exception as exc:  # an unreadable upload (e.g. a corrupt image): say so in one line
        st.error(f"Could not read this input: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        st.stop()
    classes = model.classes
    left, right = st.columns(2)
    with left:
        st.markdown("**Before**: pretrained reference (nearest class mean, no training)")
        if before is None:
            st.caption("Not available for this run.")
        else:
            best = top_k(classes, before, 1)[0]
            st.metric("Prediction before", best[0], help="cosine similarity to each class's mean pretrained feature")
            st.plotly_chart(plots.top_k_bars(top_k(classes, before), color=plots.BEFORE_COLOR), key="try-before",
                            width="stretch")
    with right:
        st.markdown(f"**After**: the run's model ({report.get('strategy', '')})")
        best = top_k(classes, after, 1)[0]
        st.metric("Prediction after", best[0], help="softmax of the fine-tuned model")
        st.plotly_chart(plots.top_k_bars(top_k(classes, after)), key="try-after", width="stretch")
