"""Try it: new inputs through a finished run's models before and after transfer — exactly the models its report
scored (``tlcore.load_run(...).predict``)."""

from ui.entry import via_app

via_app()

import streamlit as st

from tlcore import plots
from tlcore.errors import TransferLabError
from ui import datasets
from ui import try_it as ti
from ui.runs import get_store, is_finetune_run, local_folder, run_picker, visible_runs


def _save(name: str, data: bytes):
    """Store an uploaded input (the user's quota applies); a refused upload ends the page with its message."""
    try:
        return datasets.save_upload(name, data)
    except datasets.QuotaExceeded as exc:
        st.error(str(exc), icon=":material/block:")
        st.stop()


st.title("Try it")
# With an artifact store, runs not opened on this machine yet are listed by kind and only the one picked is fetched.
shared = get_store().artifacts is not None
runs = [r for r in visible_runs(status="done")
        if ti.usable(r.out) or (shared and is_finetune_run(r) and not r.out.exists())]
if not runs:
    st.info("No finished run with a model yet. Start one from **Home** or **Fine-tune**.")
    st.stop()
run = run_picker("Run", runs, key="try-run")
folder = local_folder(run)
if not ti.usable(folder):
    st.info("This run has no saved model to try (or its folder could not be fetched from the artifact store).")
    st.stop()
try:
    loaded = ti.loaded_run(folder)
except TransferLabError as exc:
    st.error(str(exc))
    st.stop()
report = loaded.report
spec = ti.run_spec(loaded)
st.caption(ti.run_caption(loaded))

# ---------------------------------------------------------------- input
inputs: list = []
if spec.token_level:   # a tagger: sentences of words
    text = st.text_area("Type a sentence (one per line)", key="try-sentence",
                        placeholder="e.g. Angela Weber flew from Leeds to Berlin for Siemens.")
    st.caption("Words are split at spaces, as in the run's data: put a space before punctuation to keep it apart.")
    inputs = ti.sentences(text)
elif loaded.modality == "text":
    text = st.text_area("Type a text", key="try-text", placeholder="e.g. The battery died after two days.")
    inputs = [text.strip()] if text.strip() else []
elif loaded.modality == "image":
    up = st.file_uploader("Upload an image", type=["png", "jpg", "jpeg", "bmp", "webp"], key="try-image")
    if up is not None:
        inputs = [str(_save(up.name, up.getvalue()))]
        st.image(inputs[0], width=160)
else:
    c1, c2 = st.columns(2)
    up = c1.file_uploader("Upload a recording", type=["wav", "flac", "ogg", "mp3"], key="try-audio")
    rec = c2.audio_input("…or record one", key="try-record")
    src = ti.pick_audio(rec, up)
    if src is not None:
        inputs = [str(_save(ti.upload_name(src), src.getvalue()))]
        st.audio(inputs[0])
        if rec is not None and up is not None:
            st.caption("Using the recording (clear it to use the uploaded file).")

if not inputs:
    st.stop()

# ---------------------------------------------------------------- both models
try:
    with st.spinner("Running the models before and after transfer…"):
        result = ti.compare(loaded, inputs)
except TransferLabError as exc:
    st.error(str(exc))
    st.stop()
except Exception as exc:  # an unreadable upload (e.g. a corrupt image or clip): say so in one line
    detail = str(exc).splitlines()[0] if str(exc) else ""
    st.error(f"Could not read this input: {type(exc).__name__}: {detail}")
    st.stop()
left, right = st.columns(2)
left.markdown(f"**Before**: {ti.before_description(report)}")
right.markdown(f"**After**: {ti.after_description(report)}")
if result.before is None:
    left.info(f"Not available for this run: {result.before_note}")

kind = ti.prediction_kind(result.after[0])
if kind == "scores":
    for col, which, row, color in ((left, "before", result.before and result.before[0], plots.BEFORE_COLOR),
                                   (right, "after", result.after[0], plots.AFTER_COLOR)):
        if row is None:
            continue
        with col:
            st.metric(f"Prediction {which}", row["prediction"], help=ti.SCORE_HELP.get(row["score"]))
            st.plotly_chart(ti.score_bars(row["top"], row["score"], color), key=f"try-{which}", width="stretch")
            if row["score"] == "cosine":
                st.caption("Scores are similarities to each class's mean pretrained feature, not probabilities.")

elif kind == "entities":
    for n, after in enumerate(result.after):
        c1, c2 = st.columns(2)
        if result.before is not None:
            c1.container(key=f"try-entities-before-{n}").markdown(ti.entities_html(result.before[n]),
                                                                  unsafe_allow_html=True)
        c2.container(key=f"try-entities-after-{n}").markdown(ti.entities_html(after), unsafe_allow_html=True)
    table = ti.spans_table(result.before, result.after)
    if len(inputs) == 1:
        del table["sentence"]
    st.space("small")
    if table["entity"]:
        st.markdown("**Entities found**")
        st.dataframe(table, hide_index=True, width="stretch", key="try-spans")
        if ti.spans_have_confidence(result.after):
            st.caption(ti.SPAN_CONFIDENCE_NOTE)
    else:
        st.caption("Neither model found an entity.")

else:  # a transcript
    after = result.after[0]
    before_text = result.before[0]["transcript"] if result.before is not None else ""
    before_html, after_html = ti.transcript_diff_html(before_text, after["transcript"])
    if result.before is not None:
        left.container(key="try-transcript-before").markdown(before_html, unsafe_allow_html=True)
    right.container(key="try-transcript-after").markdown(after_html, unsafe_allow_html=True)
    note = f"{after['seconds']:.1f} s of audio"
    if result.before is not None:
        note += " · words that differ are marked: red = only before, green = only after"
    st.caption(note)
    if after.get("truncated"):
        st.warning("The clip is longer than 30 s: both models transcribed its first 30 s only.")
