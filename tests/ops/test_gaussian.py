import math

import numpy as np
import pytest

from centernet.ops.gaussian import draw_gaussian, gaussian_2d, gaussian_radius


# Hand-computed with the original formula r_i = (b_i + sqrt(b_i^2 - 4 a_i c_i)) / 2:
# 10x10, m=0.7: r1 = (20 + sqrt(400 - 70.588)) / 2 = 19.075, r2 = (40 + sqrt(1600 - 480)) / 2 = 36.733,
#   case 3: a=2.8, b=-28, c=-30 -> (-28 + sqrt(784 + 336)) / 2 = 2.7332 (the minimum)
# 20x40, m=0.7: case 3: a=2.8, b=-84, c=-240 -> (-84 + sqrt(7056 + 2688)) / 2 = 7.3558
# 1x1, m=0.7: case 3: a=2.8, b=-2.8, c=-0.3 -> (-2.8 + sqrt(7.84 + 3.36)) / 2 = 0.2733
@pytest.mark.parametrize("h, w, expected", [(10, 10, 2.7332), (20, 40, 7.3558), (1, 1, 0.2733)])
def test_radius_original_formula(h, w, expected):
    assert gaussian_radius(h, w, 0.7) == pytest.approx(expected, abs=1e-4)


# Exact roots by hand: 10x10, m=0.7:
# r1 = (20 - sqrt(400 - 4 * 17.647)) / 2 = 0.9251, r2 = (40 - sqrt(1600 - 480)) / 8 = 0.8167,
# r3 = (-28 + sqrt(1120)) / 5.6 = 0.9761 -> 0.8167
def test_radius_exact_hand_value():
    assert gaussian_radius(10, 10, 0.7, exact=True) == pytest.approx(0.8167, abs=1e-4)


@pytest.mark.parametrize("h, w", [(10, 10), (12, 30), (50, 7), (200, 120)])
@pytest.mark.parametrize("m", [0.5, 0.7, 0.9])
def test_radius_exact_gives_the_target_iou(h, w, m):
    """Each exact root is where the IoU of the moved box equals min_overlap; the radius is their minimum."""
    r = gaussian_radius(h, w, m, exact=True)
    # both corners moved inwards by r
    iou_in = (w - 2 * r) * (h - 2 * r) / (w * h) if r <= min(h, w) / 2 else 0.0
    # both corners moved outwards by r
    iou_out = w * h / ((w + 2 * r) * (h + 2 * r))
    # the box shifted by (r, r): one corner in, one out
    inter = (w - r) * (h - r)
    iou_shift = inter / (2 * w * h - inter)
    assert min(iou_in, iou_out, iou_shift) == pytest.approx(m, abs=1e-6)
    assert min(iou_in, iou_out, iou_shift) >= m - 1e-6


def test_radius_original_is_larger_than_exact():
    for h, w in [(10, 10), (30, 60), (4, 100)]:
        assert gaussian_radius(h, w) > gaussian_radius(h, w, exact=True)


def test_gaussian_peak_symmetry_and_sigma():
    g = gaussian_2d(3)  # diameter 7, sigma 7/6
    assert g.shape == (7, 7)
    assert g[3, 3] == 1.0 and g.max() == 1.0
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, :])
    np.testing.assert_allclose(g, g[:, ::-1])
    sigma = 7 / 6
    assert g[3, 4] == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert g[0, 0] == pytest.approx(math.exp(-18 / (2 * sigma**2)), rel=1e-5)
    assert gaussian_2d(0).tolist() == [[1.0]]


def test_draw_gaussian_max_merge_and_border():
    heat = np.zeros((20, 20), np.float32)
    draw_gaussian(heat, (5, 5), 3)
    draw_gaussian(heat, (7, 5), 3)
    assert heat[5, 5] == 1.0 and heat[5, 7] == 1.0
    g = gaussian_2d(3)
    # between the two peaks each pixel is the max of both Gaussians, not the sum
    assert heat[5, 6] == pytest.approx(max(g[3, 4], g[3, 2]))
    assert heat.max() == 1.0
    # a Gaussian at the corner is cut, not wrapped
    corner = np.zeros((10, 10), np.float32)
    draw_gaussian(corner, (0, 0), 4)
    assert corner[0, 0] == 1.0
    np.testing.assert_allclose(corner[:5, :5], gaussian_2d(4)[4:, 4:])
    assert corner[9, 9] == 0.0
