import numpy as np
import pytest

from mouse_facial_expressions.synth.stamp import draw_stamp, read_stamp


@pytest.mark.parametrize("index", [0, 1, 255, 4097, 65535])
def test_stamp_round_trips(index):
    f = np.full((64, 200), 200, np.uint8)
    assert read_stamp(draw_stamp(f, index)) == index


def test_unstamped_frame_decodes_to_minus_one():
    assert read_stamp(np.zeros((64, 200), np.uint8)) == -1


def test_index_too_large_is_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        draw_stamp(np.zeros((64, 200), np.uint8), 2**16)
