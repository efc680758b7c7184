"""Folding for search and the question cues, in Vietnamese and English."""

import pytest

from streamctl.text import fold, looks_like_question


def test_fold_strips_diacritics_and_case():
    assert fold("Hạ Long") == "ha long"
    assert fold("ĐƯỜNG  Điện Biên") == "duong dien bien"


@pytest.mark.parametrize("text", [
    "Cho hỏi khi nào sửa đường 18?", "Xin hỏi về học phí", "Tại sao nước ngập", "Bao giờ xong cầu",
    "Thủ tục như thế nào", "Tôi làm vậy có được không", "Đường này làm xong chưa ạ", "How long will it take",
    "when does the bridge open", "why is the school closed", "Is the hospital open",
])
def test_questions_are_recognised(text):
    assert looks_like_question(text)


@pytest.mark.parametrize("text", ["Xin chào mọi người", "Chúc kỳ họp thành công", "great stream", "👏👏👏", ""])
def test_greetings_are_not_questions(text):
    assert not looks_like_question(text)
