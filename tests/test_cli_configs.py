"""One validator for every config (issue 17): the CLI's diagnose, rank and cluster subcommands are generated from
DiagnoseConfig, RankConfig and ClusterConfig, and the CLI and the API refuse the same bad settings with the same
words (the app's forms validate through the same configs)."""

import argparse
import contextlib
import io
import json

import pytest
from conftest import write_text_set

import tlcore
from tlcore.cli import build_parser, main
from tlcore.cli.parser import CURVE_FIELDS, GENERATED, REPORT_FLAGS
from tlcore.config import field_help, limit_text, option_name
from tlcore.errors import ConfigError
from tlcore.experiments.configs import ClusterConfig, CurveConfig, DiagnoseConfig, LabelNextConfig, RankConfig


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _cli(argv: list) -> tuple[int, list[str]]:
    """Run the CLI in-process: (exit code, the stderr lines that start with 'error:' or are argparse's)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:      # argparse refusing a flag
            rc = exc.code
    return rc, [ln for ln in err.getvalue().splitlines() if ln.startswith("error:") or ": error: " in ln]


@pytest.mark.parametrize("command, cls", [("diagnose", DiagnoseConfig), ("rank", RankConfig),
                                          ("cluster", ClusterConfig), ("label-next", LabelNextConfig)])
def test_the_subcommand_flags_are_exactly_the_config_fields(command, cls):
    assert GENERATED[command][0] is cls
    skipped = GENERATED[command][1]
    sub = _subparser(command)
    dests = {a.dest for a in sub._actions if a.dest != "help"}
    fields = field_help(cls)
    own = {"csv"} if command == "label-next" else set()     # label-next also writes its list as CSV
    assert dests == (set(fields) - set(skipped)) | set(REPORT_FLAGS) | own
    for name, meta in fields.items():
        if name in skipped:
            continue
        action = next(a for a in sub._actions if a.dest == name)
        assert "--" + option_name(name, meta) in action.option_strings, name
        assert action.help.startswith(meta["help"]), name
        if limit_text(meta):
            assert f"Allowed: {limit_text(meta)}." in action.help, name
    assert skipped == (("out",) if command == "cluster" else ())


def test_the_curves_own_flags_come_from_curve_config():
    """``curve`` takes FinetuneConfig's flags for the runs at each point and CurveConfig's for the curve itself: the
    same help, limits and defaults as the app's curve form, and the old spellings (--no-scratch) still parse."""
    sub = _subparser("curve")
    fields = field_help(CurveConfig)
    for name in CURVE_FIELDS:
        action = next(a for a in sub._actions if a.dest == name)
        assert action.help.startswith(fields[name]["help"]), name
        if limit_text(fields[name]):
            assert f"Allowed: {limit_text(fields[name])}." in action.help, name
    args = build_parser().parse_args(["curve", "--modality", "text", "--target", "t", "--shots", "1, 5,all",
                                      "--seeds", "2", "--no-scratch"])
    assert CurveConfig.parse_shots(",".join(args.shots)) == [1, 5, 0]
    assert (args.seeds, args.scratch) == (2, False)
    defaults = build_parser().parse_args(["curve", "--modality", "text", "--target", "t"])
    assert (defaults.shots, defaults.seeds, defaults.scratch) == (CurveConfig().shots, CurveConfig().seeds, True)


def test_flags_keep_their_names_and_parse_into_the_config():
    args = build_parser().parse_args(["rank", "--modality", "text", "--target", "t", "--backbones", "a, b@random",
                                      "--validate", "--eval", "e", "--seed", "7", "--task", "classify"])
    assert (args.backbones, args.validate_ranking, args.eval, args.seed) == (["a", "b@random"], True, "e", 7)
    args = build_parser().parse_args(["cluster", "--modality", "image", "--data", "d", "--k", "3", "--max-items", "200",
                                      "--on-bad-file", "refuse"])
    assert (args.k, args.max_items, args.on_bad_file) == (3, 200, "refuse")
    args = build_parser().parse_args(["diagnose", "--modality", "audio", "--source", "s", "--target", "t",
                                      "--map-method", "umap", "--backbone", "tiny-audio"])
    assert (args.map_method, args.backbone, args.seed, args.task) == ("umap", "tiny-audio", 0, None)


def _cases(tmp):
    """(what, CLI argv, the API call) pairs with one bad setting each; ``tmp`` exists (paths are only checked for
    existence before the data is read)."""
    return [
        ("diagnose seed out of range", ["diagnose", "--modality", "text", "--source", tmp, "--target", tmp, "--seed", "-1"],
         lambda: tlcore.diagnose(tmp, tmp, modality="text", seed=-1)),
        ("diagnose seed not whole", ["diagnose", "--modality", "text", "--source", tmp, "--target", tmp, "--seed", "2.5"],
         lambda: tlcore.diagnose(tmp, tmp, modality="text", seed=2.5)),
        ("diagnose unknown modality", ["diagnose", "--modality", "video", "--source", tmp, "--target", tmp],
         lambda: tlcore.diagnose(tmp, tmp, modality="video")),
        ("diagnose no modality", ["diagnose", "--source", tmp, "--target", tmp],
         lambda: tlcore.diagnose(tmp, tmp)),
        ("diagnose missing target", ["diagnose", "--modality", "text", "--source", tmp],
         lambda: tlcore.diagnose(tmp, modality="text")),
        ("diagnose unknown map method", ["diagnose", "--modality", "text", "--source", tmp, "--target", tmp,
                                         "--map-method", "tsne"],
         lambda: tlcore.diagnose(tmp, tmp, modality="text", map_method="tsne")),
        ("diagnose task of another modality", ["diagnose", "--modality", "image", "--task", "asr", "--source", tmp,
                                               "--target", tmp],
         lambda: tlcore.diagnose(tmp, tmp, modality="image", task="asr")),
        ("diagnose missing source folder", ["diagnose", "--modality", "text", "--source", tmp + "/gone", "--target", tmp],
         lambda: tlcore.diagnose(tmp + "/gone", tmp, modality="text")),
        ("rank missing target", ["rank", "--modality", "text"], lambda: tlcore.rank(modality="text")),
        ("rank unknown backbone", ["rank", "--modality", "text", "--target", tmp, "--backbones", "tiny-text,no-such"],
         lambda: tlcore.rank(tmp, modality="text", backbones=["tiny-text", "no-such"])),
        ("rank backbone of another modality", ["rank", "--modality", "text", "--target", tmp, "--backbones",
                                               "tiny-image"],
         lambda: tlcore.rank(tmp, modality="text", backbones=["tiny-image"])),
        ("rank --validate for NER", ["rank", "--modality", "text", "--task", "ner", "--target", tmp, "--validate"],
         lambda: tlcore.rank(tmp, modality="text", task="ner", validate=True)),
        ("rank eval without validate", ["rank", "--modality", "text", "--target", tmp, "--eval", tmp],
         lambda: tlcore.rank(tmp, modality="text", eval=tmp)),
        ("cluster k=1", ["cluster", "--modality", "text", "--data", tmp, "--k", "1"],
         lambda: tlcore.cluster(tmp, modality="text", k=1)),
        ("cluster max-items too few", ["cluster", "--modality", "text", "--data", tmp, "--max-items", "5"],
         lambda: tlcore.cluster(tmp, modality="text", max_items=5)),
        ("cluster unknown modality", ["cluster", "--modality", "video", "--data", tmp],
         lambda: tlcore.cluster(tmp, modality="video")),
        ("cluster missing data", ["cluster", "--modality", "text"], lambda: tlcore.cluster(modality="text")),
        ("cluster on-bad-file", ["cluster", "--modality", "text", "--data", tmp, "--on-bad-file", "ignore"],
         lambda: tlcore.cluster(tmp, modality="text", on_bad_file="ignore")),
    ]


def test_the_cli_and_the_api_refuse_with_the_same_words(tmp_path):
    tmp = str(tmp_path)
    for what, argv, call in _cases(tmp):
        with pytest.raises(ConfigError) as api_error:
            call()
        rc, lines = _cli(argv)
        assert rc == 2 and lines == [f"error: {api_error.value}"], (what, lines, str(api_error.value))


def test_the_messages_say_what_is_wrong(tmp_path):
    tmp = str(tmp_path)
    expected = {"diagnose seed out of range": "seed must be between 0 and 4294967295; got -1",
                "diagnose unknown modality": "modality must be one of image, text, audio; got 'video'",
                "diagnose no modality": "modality is required: one of image, text, audio",
                "diagnose missing target": "target is required",
                "rank missing target": "target is required",
                "cluster k=1": "k must be between 2 and 50; got 1",
                "cluster missing data": "data is required"}
    for what, argv, _call in _cases(tmp):
        if what in expected:
            assert _cli(argv)[1] == [f"error: {expected[what]}"], what


def test_a_config_object_and_keywords_are_the_same_call(tmp_path):
    tmp = str(tmp_path)
    cfg = ClusterConfig(modality="text", data=tmp, k=1)
    with pytest.raises(ConfigError, match="k must be between 2 and 50; got 1"):
        tlcore.cluster(config=cfg)
    with pytest.raises(ConfigError, match="k must be between 2 and 50; got 1"):
        tlcore.cluster(config=ClusterConfig(modality="text", data=tmp, k=5), k=1)   # keywords override the config
    with pytest.raises(ConfigError, match="config must be a RankConfig; got ClusterConfig"):
        tlcore.rank(config=cfg)
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['colour'\] for a diagnosis"):
        DiagnoseConfig.from_dict({"modality": "text", "colour": "red"})
    ok = RankConfig(modality="text", target=tmp, backbones=["tiny-text"], validate_ranking=True, eval=tmp)
    assert ok.validate() is ok and RankConfig.from_dict(ok.to_dict()) == ok
    dx = DiagnoseConfig(modality="text", source=tmp, target=tmp, backbone="tiny-text")
    assert dx.validate() is dx and DiagnoseConfig.from_dict(dx.to_dict()) == dx


def test_cluster_from_the_cli_takes_the_configs_new_flags(tmp_path, one_thread):
    """--max-items samples the data (the config's field, now a flag); the report matches the API's."""
    data = write_text_set(tmp_path / "data", n_per_class=12)
    out = tmp_path / "cl.json"
    rc, lines = _cli(["cluster", "--modality", "text", "--data", data, "--backbone", "tiny-text", "--k", "2",
                      "--max-items", "10", "--quiet", "--json", out])
    assert rc == 0 and lines == []
    report = json.loads(out.read_text())
    assert report["data"]["n"] == 10 and report["data"]["n_total"] == 24
    api = tlcore.cluster(data, modality="text", backbone="tiny-text", k=2, max_items=10).to_dict()
    assert api["pretrained"] == report["pretrained"] and api["raw"] == report["raw"]
