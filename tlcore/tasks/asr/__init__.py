"""Speech recognition: a pretrained Whisper, or an encoder with a CTC head (wav2vec2-style), adapted to a target accent
from transcribed clips."""

from tlcore.tasks.default_lrs import derived_lrs
from tlcore.tasks.spec import Metric, TaskSpec

SPEC = TaskSpec(
    name="asr", package="tlcore.tasks.asr",
    title="Speech recognition (ASR)", noun="speech recognition", description="speech recognition (ASR)",
    modalities=("audio",),
    metrics=(Metric("wer", "WER", higher_is_better=False, percent=True, card_label="WER"),
             Metric("cer", "CER", higher_is_better=False, percent=True, card_label="CER")),
    second_metric="cer", unit="clips", card_unit="clips", card_title="speech recognition adapted to an accent",
    labels_key=None, label_noun="transcripts",
    data_hint="audio clips with a metadata.csv of file_name,transcription",
    target_hint=("pass --target with transcribed target-accent clips (a folder with metadata.csv: "
                 "file_name,transcription)"),
    use=("from tlcore import load_run", "load_run('RUN_DIR').predict(['clip.wav'])",
         "# model/ is a standard transformers folder (Whisper, or a CTC model with its processor):",
         "# transformers.pipeline('automatic-speech-recognition', model='RUN_DIR/model')"),
    report_sections=("per_group", "source_eval", "changed_transcripts"),
    strategies=("decoder", "full", "lora"),   # a CTC model takes full and lora (tasks/asr/kinds.py)
    # Whisper's learning rates, derived on development data (accent-asr's target split, whole speakers held out,
    # never its eval split) by benchmarks/derive_defaults.py --tasks (evidence: docs/task_default_lrs.json)
    lrs=derived_lrs("asr"),
    lr_grid={"decoder": (3e-5, 1e-4, 3e-4), "full": (1e-5, 2e-5, 5e-5), "lora": (3e-4, 1e-3, 3e-3)},
    strategy_help={
        "decoder": "Whisper only: decoder-only fine-tuning: the encoder is frozen (its outputs are computed once), "
                   "token embeddings stay fixed",
        "full": "every weight is fine-tuned (a CTC model: all but its convolutional feature encoder, frozen as usual)",
        "lora": "LoRA adapters on q_proj/v_proj of the attention (a CTC model: and its CTC head), merged into the "
                "weights at the end",
    },
    default_strategy="decoder",
    backbones=(("whisper-tiny-en", "Whisper tiny.en (bundled, offline), fine-tuned as a speech recognizer"),),
    backbone_hint=("a Whisper model, or an encoder with a CTC head saved with its processor (e.g. Wav2Vec2ForCTC with "
                   "its Wav2Vec2Processor): a Hugging Face model id or a local save_pretrained folder"),
    upload_types=("zip",), baselines=(), card_percent=True, hub_pipeline="automatic-speech-recognition",
    onnx_refusal=("speech recognition runs are not exported: Whisper transcribes with an autoregressive generate() "
                  "loop (decoder cache, suppressed tokens, timestamps) that torch.onnx.export cannot trace as one "
                  "graph, and an encoder-only export would not transcribe anything; a CTC model's graph would trace, "
                  "but TransferLab's export and its parity check cover classifiers and taggers only (the transcript "
                  "comes from the tokenizer's CTC decoding, outside the graph). The run's model/ folder is a standard "
                  "transformers folder: export it with Hugging Face Optimum (optimum-cli export onnx)"),
)
