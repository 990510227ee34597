import json
import math
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings, strategies as st

from denser.viz import (TokenSample, css_rgb, display_text, plot_token_heatmap, plot_weight_histogram, read_samples,
                        samples_from_batch, token_heatmap, value_rgb)
from denser.weights import token_weights

RGB = re.compile(r"rgb\((-?\d+), (-?\d+), (-?\d+)\)")
VOID = {"meta", "br", "img", "hr", "input", "link"}


class TagBalance(HTMLParser):
    "Records the tags that are closed out of order or left open."

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):  # <meta .../> opens and closes itself
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def parse_page(page):
    "The page as an XML tree (the doctype line removed); raises if the markup is not well-formed."
    assert page.startswith("<!DOCTYPE html>\n")
    return ElementTree.fromstring(page.split("\n", 1)[1])


def token_spans(root):
    return [span for span in root.iter("span") if span.get("title", "").startswith("t=")]


def assert_colours_in_range(markup):
    channels = [int(c) for match in RGB.findall(markup) for c in match]
    assert channels, "no colours found"
    assert all(0 <= c <= 255 for c in channels)


tokens_st = st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=12)
value_st = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 20))


@st.composite
def samples_st(draw):
    tokens = draw(tokens_st)
    n = len(tokens)
    per_token = st.lists(value_st, min_size=n, max_size=n)
    return TokenSample(tokens, draw(per_token), draw(st.floats(-5, 5)), draw(st.one_of(st.none(), per_token)),
                       draw(st.one_of(st.none(), per_token)), label=draw(st.text(max_size=8)))


@settings(max_examples=60, deadline=None)
@given(st.lists(samples_st(), min_size=1, max_size=3), st.sampled_from(["weights", "cross", "within"]),
       st.text(max_size=10))
def test_any_tokens_and_values_give_well_formed_html_with_escaped_text_and_colours_in_range(samples, by, title):
    heatmap = token_heatmap(samples, by=by, title=title)
    page = heatmap.page()
    root = parse_page(page)
    balance = TagBalance()
    balance.feed(page)
    assert not balance.errors and not balance.stack
    drawn = [span.text or "" for span in token_spans(root)]
    expected = [display_text(t) for s in samples for t in s.tokens]
    assert drawn == expected
    assert_colours_in_range(page)


def test_special_characters_are_escaped_in_tokens_labels_and_titles():
    nasty = TokenSample(["<script>alert('x')</script>", "&amp;", '"', "<|im_end|>"], [1.0, 2.0, 0.5, 8.0], -1.0,
                        label="<img src=x onerror=alert(1)>")
    page = token_heatmap([nasty], title="</div><b>").page()
    assert "<script>" not in page and "<img" not in page and "<|im_end|>" not in page and "</div><b>" not in page
    assert "&lt;script&gt;" in page and "&amp;amp;" in page
    root = parse_page(page)
    assert [s.text for s in token_spans(root)] == nasty.tokens
    assert root.find("head/title").text == "</div><b>"


@settings(max_examples=200, deadline=None)
@given(value_st, st.sampled_from(["weights", "cross", "within"]), st.floats(1.01, 100), st.floats(0, 10))
def test_every_value_maps_to_a_colour_in_range(value, by, limit, vmax):
    rgb = value_rgb(value, by, limit, vmax)
    assert len(rgb) == 3 and all(0 <= c <= 1 for c in rgb)
    assert_colours_in_range(css_rgb(rgb))


def test_unprintable_characters_are_shown_as_escapes():
    assert display_text("a\x00\x1f\r\x85\ud800\uffff\t\n") == "a\\x00\\x1f\\x0d\\x85\\ud800\\uffff→↵\n"


def test_weight_colours_are_white_at_one_red_above_blue_below():
    white, red, blue = value_rgb(1.0), value_rgb(4.0), value_rgb(0.25)
    assert min(white) > 0.9
    assert red[0] > red[1] + 0.3 and red[0] > red[2] + 0.2 and blue[2] > blue[0] + 0.3


def test_standalone_file_is_utf8_html(tmp_path):
    sample = TokenSample(["é", "√", "\n", "x"], [1.0, 2.0, 3.0, 0.1], 0.5)
    path = token_heatmap([sample]).save(tmp_path / "sub" / "map.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8"/>' in text and "√" in text
    parse_page(text)


def test_trainer_jsonl_schema_round_trips(tmp_path):
    record = {"step": 3, "group": 0, "index": 1, "prompt": "p", "completion": "a<b", "tokens": ["a", "<", "b"],
              "token_ids": [1, 2, 3], "advantage": -0.5, "weights": [0.2, 2.5, 0.3],
              "token_advantages": [-0.1, -1.25, -0.15], "cross": None, "within": 0.25, "has_contrast": True}
    lines = [dict(record, step=step) for step in (1, 3)]
    (tmp_path / "denser_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    samples = read_samples(tmp_path, steps=-1)
    assert len(samples) == 1
    sample = samples[0]
    assert sample.label == "step 3 · group 0 · index 1"
    assert sample.cross_mean is None and sample.within_mean == 0.25 and sample.cross is None
    assert len(read_samples(tmp_path / "denser_samples.jsonl")) == 2
    page = token_heatmap(samples, by="cross").page()
    assert "no per-token cross divergence recorded" in page
    parse_page(page)


def test_samples_from_token_weights_batch_align_with_tokens():
    torch.manual_seed(0)
    hidden = torch.randn(4, 6, 8)
    mask = torch.ones(4, 6)
    mask[1, 4:] = 0
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    result = token_weights(hidden, advantages, mask, 4, window_size=1)
    tokens = [list("abcdef"), list("abcd"), list("abcdef"), list("abcdef")]
    samples = samples_from_batch(tokens, advantages, result)
    assert [len(s.weights) for s in samples] == [6, 4, 6, 6]
    assert samples[1].weights == pytest.approx(result.weights[1, :4].tolist())
    assert samples[2].cross == pytest.approx(result.cross_per_token[2].tolist())
    for by in ("weights", "cross", "within"):
        parse_page(token_heatmap(samples, by=by).page())


def test_figures_draw_without_error():
    sample = TokenSample(["line one\n", "two $x$", " <x>"] * 30, [0.5, 1.0, 3.0] * 30, -0.2)
    fig = plot_token_heatmap([sample, TokenSample(["a"], [1.0], 0.3)], width=40, title="t")
    assert len(fig.axes[0].patches) >= 90
    ax = plot_weight_histogram([sample])
    assert ax.patches
    plt.close("all")


def test_bad_arguments_are_named():
    sample = TokenSample(["a"], [1.0], 0.0)
    with pytest.raises(ValueError, match="by must be one of"):
        token_heatmap([sample], by="loss")
    with pytest.raises(ValueError, match="weights has 2 values for 1 tokens"):
        TokenSample(["a"], [1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="needs keys tokens, weights and advantage"):
        from denser.viz import sample_from_record
        sample_from_record({"tokens": ["a"]})
