"""Speech recognition: a pretrained Whisper adapted to a target accent from transcribed clips."""

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
         "# model/ is a standard Whisper folder: WhisperForConditionalGeneration.from_pretrained('model')"),
    report_sections=("per_group", "source_eval", "changed_transcripts"),
    strategies=("decoder", "full", "lora"),
    lrs={"decoder": 1e-4, "full": 2e-5, "lora": 1e-3},   # Whisper fine-tuning values for minutes of audio
    strategy_help={
        "decoder": "decoder-only fine-tuning: the encoder is frozen (its outputs are computed once), token "
                   "embeddings stay fixed",
        "full": "every weight is fine-tuned",
        "lora": "LoRA adapters on q_proj/v_proj of encoder and decoder attention, merged into the weights at the end",
    },
    default_strategy="decoder",
    backbones=(("whisper-tiny-en", "Whisper tiny.en (bundled, offline), fine-tuned as a speech recognizer"),),
    upload_types=("zip",), baselines=(), card_percent=True, hub_pipeline="automatic-speech-recognition",
    onnx_refusal=("speech recognition runs are not exported: Whisper transcribes with an autoregressive generate() "
                  "loop (decoder cache, suppressed tokens, timestamps) that torch.onnx.export cannot trace as one "
                  "graph, and an encoder-only export would not transcribe anything. The run's model/ folder is a "
                  "standard Whisper folder: export it with a tool that splits encoder and decoder (e.g. Hugging Face "
                  "Optimum)"),
)
