"""Face-quality index: MTCNN through the torchvision stand-in, landmark checks, NMS, FaceQnet mechanics."""

import sys

import numpy as np
import pytest
import torch

from metrics.face_quality import FaceQuality, batched_nms, landmark_plausibility


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def fq():
    return FaceQuality()


def test_real_face_scores_higher_than_coffee_and_noise(fq):
    from skimage import data

    noise = np.random.RandomState(0).randint(0, 256, (256, 256, 3)).astype(np.uint8)
    face, coffee, rand = fq.score(data.astronaut()), fq.score(data.coffee()), fq.score(noise)
    assert face['face'] and face['prob'] > 0.9 and face['landmarks'] == 1.0
    assert face['fqi'] > 0.9
    assert face['fqi'] > coffee['fqi'] and face['fqi'] > rand['fqi']
    assert 'torchvision' not in sys.modules  # the stand-in modules were removed after the import


def test_landmark_plausibility_checks():
    box = (0, 0, 100, 120)
    good = [(30, 40), (70, 40), (50, 65), (35, 90), (65, 90)]
    assert landmark_plausibility(box, good) == 1.0
    upside_down = [(x, 120 - y) for x, y in good]  # fails eyes-above-nose and nose-above-mouth
    assert landmark_plausibility(box, upside_down) == pytest.approx(4 / 6)
    close_eyes = [(48, 40), (52, 40), (60, 65), (35, 90), (65, 90)]  # nose not between, ratio 0.04
    assert landmark_plausibility(box, close_eyes) == pytest.approx(4 / 6)
    outside = [(30, 40), (70, 40), (50, 65), (35, 90), (65, 300)]  # mouth corner far below the box
    assert landmark_plausibility(box, outside) == pytest.approx(5 / 6)


def _nms_reference(boxes, scores, idxs, thr):
    keep = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        ok = True
        for j in keep:
            if idxs[j] != idxs[i]:
                continue
            ax1, ay1, ax2, ay2 = boxes[i]
            bx1, by1, bx2, by2 = boxes[j]
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            ih = max(0.0, min(ay2, by2) - max(ay1, by1))
            inter = iw * ih
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            if inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_batched_nms_against_reference():
    rng = np.random.RandomState(1)
    xy = rng.rand(60, 2) * 50
    wh = rng.rand(60, 2) * 30 + 5
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.rand(60)
    idxs = rng.randint(0, 3, 60)
    for thr in (0.3, 0.5, 0.7):
        got = batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(idxs), thr)
        assert got.tolist() == _nms_reference(boxes.tolist(), scores.tolist(), idxs.tolist(), thr)
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0


class MeanBrightness(torch.nn.Module):
    """Stand-in quality network: mean of the crop / 255."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3)) / 255.0


def test_faceqnet_torchscript_is_applied_to_the_face_crop(tmp_path):
    from skimage import data

    from metrics.face_quality import square_crop

    path = tmp_path / 'faceqnet.pt'
    torch.jit.script(MeanBrightness()).save(str(path))
    fq = FaceQuality(faceqnet=str(path))
    img = data.astronaut()
    got = fq.score(img)
    boxes, _ = fq.mtcnn.detect(img)
    assert got['face']
    assert got['fqi'] == pytest.approx(float(square_crop(img, boxes[0]).mean() / 255), rel=1e-5)
    assert fq.score(np.zeros((64, 64, 3), np.uint8))['fqi'] == 0.0
    (tmp_path / 'bad.pt').write_bytes(b'junk')
    with pytest.raises(ValueError):
        FaceQuality(faceqnet=str(tmp_path / 'bad.pt'))
