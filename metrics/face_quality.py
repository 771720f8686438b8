"""Face-quality index (FQI) of generated images, from facenet-pytorch's MTCNN (weights ship in its wheel).

Default score, per image (float in [0, 1]):

    FQI = p * L

where p is the MTCNN detection probability of the most probable face (FQI = 0 when no face is found) and
L is the landmark plausibility of that face: the fraction of these 6 checks that hold, with MTCNN's five
landmarks (image coordinates, y pointing down) eye_a, eye_b, nose, mouth_a, mouth_b and box
(x1, y1, x2, y2):

1. both eyes are above the nose: max(eye_a.y, eye_b.y) < nose.y
2. the nose is above both mouth corners: nose.y < min(mouth_a.y, mouth_b.y)
3. left/right order is consistent: eye_a.x < eye_b.x and mouth_a.x < mouth_b.x
4. the nose lies horizontally between the eyes: min(eye.x) < nose.x < max(eye.x)
5. eye distance relative to box width: 0.25 <= |eye_b - eye_a| / (x2 - x1) <= 0.75
6. all five landmarks lie inside the box grown by 10 % of its width/height on every side.

MTCNN runs with facenet-pytorch's defaults (min face 20 px, thresholds 0.6 / 0.7 / 0.7, scale factor 0.709).
Images whose longer side exceeds `max_side` (512) are shrunk (PIL box filter) before detection.

With `faceqnet=PATH` the score is instead a FaceQnet-style quality regressor applied to the most probable
face. Only a TorchScript file (`torch.jit.load`) is supported, which must already contain the Keras weights
converted to PyTorch; the original Keras .h5 files cannot be read here and no conversion is provided. The
contract: input float32 [N, 3, 224, 224] RGB 0..255 (the face crop: a square of side max(box w, h) around
the box centre, clipped to the image, resized bilinearly), output [N] or [N, 1] quality; any channel
order or normalisation the converted network needs must be part of the TorchScript module. No face -> 0.

torchvision does not work with this torch, but facenet_pytorch.models.utils.detect_face imports
`torchvision.transforms.functional` (only used by face extraction, which is not used here) and
`torchvision.ops.boxes.batched_nms`. `_import_mtcnn` therefore places stand-in modules named
`torchvision`, `torchvision.ops`, `torchvision.ops.boxes` (holding `batched_nms`, below, written in torch),
`torchvision.transforms` and `torchvision.transforms.functional` (empty) into `sys.modules` only while
facenet_pytorch is imported, then restores `sys.modules` as it was; the imported detect_face module keeps
its reference to the stand-in `batched_nms`. If facenet_pytorch is already imported, it is used as is.
"""

import contextlib
import sys
import types

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

_SHIM_NAMES = ('torchvision', 'torchvision.ops', 'torchvision.ops.boxes',
               'torchvision.transforms', 'torchvision.transforms.functional')


def batched_nms(boxes, scores, idxs, iou_threshold):
    """Greedy non-maximum suppression, separately for every value of `idxs`.

    boxes: float [K, 4] as (x1, y1, x2, y2); scores: [K]; idxs: int [K] group ids. A box is dropped when
    its IoU (areas (x2 - x1) * (y2 - y1)) with a kept, higher-scoring box of its group exceeds
    `iou_threshold`. Returns int64 indices of the kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # Moving each group far away from the others makes one pass handle all groups.
    offsets = idxs.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    b = boxes + offsets[:, None]
    x1, y1, x2, y2 = b.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    order = torch.argsort(scores, descending=True)
    keep = []
    while order.numel() > 0:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep)


@contextlib.contextmanager
def _torchvision_stand_in():
    saved = {name: sys.modules.get(name) for name in _SHIM_NAMES}
    mods = {name: types.ModuleType(name) for name in _SHIM_NAMES}
    mods['torchvision.ops.boxes'].batched_nms = batched_nms
    mods['torchvision'].ops = mods['torchvision.ops']
    mods['torchvision'].transforms = mods['torchvision.transforms']
    mods['torchvision.ops'].boxes = mods['torchvision.ops.boxes']
    mods['torchvision.transforms'].functional = mods['torchvision.transforms.functional']
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def _import_mtcnn():
    """facenet_pytorch.MTCNN, imported with the torchvision stand-in (see the module docstring)."""
    if 'facenet_pytorch' not in sys.modules:
        with _torchvision_stand_in():
            import facenet_pytorch  # noqa: F401
    return sys.modules['facenet_pytorch'].MTCNN


def landmark_plausibility(box, points):
    """Fraction (0..1) of the 6 landmark checks of the module docstring that hold.

    box: (x1, y1, x2, y2) pixels; points: [5, 2] (x, y) pixels in MTCNN order (eye, eye, nose, mouth, mouth).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    p = np.asarray(points, dtype=np.float64)
    eye_a, eye_b, nose, mouth_a, mouth_b = p
    bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    ratio = np.linalg.norm(eye_b - eye_a) / bw
    checks = [
        max(eye_a[1], eye_b[1]) < nose[1],
        nose[1] < min(mouth_a[1], mouth_b[1]),
        eye_a[0] < eye_b[0] and mouth_a[0] < mouth_b[0],
        min(eye_a[0], eye_b[0]) < nose[0] < max(eye_a[0], eye_b[0]),
        0.25 <= ratio <= 0.75,
        bool(np.all((p[:, 0] >= x1 - 0.1 * bw) & (p[:, 0] <= x2 + 0.1 * bw)
                    & (p[:, 1] >= y1 - 0.1 * bh) & (p[:, 1] <= y2 + 0.1 * bh))),
    ]
    return sum(bool(c) for c in checks) / len(checks)


def square_crop(img, box, size=224):
    """Square crop (side max(box w, h), centred on the box, clipped to the image) -> float32 [3, size, size] 0..255."""
    h, w, _ = img.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(max(round(cx - side / 2), 0)), int(max(round(cy - side / 2), 0))
    right, bottom = int(min(round(cx + side / 2), w)), int(min(round(cy + side / 2), h))
    crop = torch.from_numpy(np.ascontiguousarray(img[top:max(bottom, top + 1), left:max(right, left + 1)]))
    crop = crop.permute(2, 0, 1)[None].to(torch.float32)
    return F.interpolate(crop, size=(size, size), mode='bilinear', align_corners=False)[0]


class FaceQuality:
    """Per-image face quality; `scores(images)` maps a list of [H, W, 3] uint8 arrays to a list of dicts
    with keys fqi (the score used), prob, landmarks (L) and face (bool)."""

    def __init__(self, device='cpu', faceqnet=None, max_side=512):
        self.device = torch.device(device)
        self.max_side = max_side
        self.mtcnn = _import_mtcnn()(select_largest=False, device=self.device).eval()
        self.faceqnet = None
        if faceqnet is not None:
            try:
                self.faceqnet = torch.jit.load(faceqnet, map_location=self.device).eval()
            except RuntimeError as e:
                raise ValueError(f'{faceqnet} is not a TorchScript file ({str(e).splitlines()[0]})') from e

    def _shrink(self, img):
        h, w, _ = img.shape
        if max(h, w) <= self.max_side:
            return img
        s = self.max_side / max(h, w)
        size = (max(round(w * s), 1), max(round(h * s), 1))
        return np.asarray(PIL.Image.fromarray(img).resize(size, PIL.Image.BOX))

    @torch.no_grad()
    def score(self, img):
        """Quality of one [H, W, 3] uint8 image (dict, see the class docstring)."""
        img = self._shrink(img)
        boxes, probs, points = self.mtcnn.detect(img, landmarks=True)
        if boxes is None or len(boxes) == 0:
            return dict(fqi=0.0, prob=0.0, landmarks=0.0, face=False)
        best = int(np.argmax(np.asarray(probs, dtype=np.float64)))
        prob = float(probs[best])
        plaus = landmark_plausibility(boxes[best], points[best])
        if self.faceqnet is not None:
            x = square_crop(img, boxes[best])[None].to(self.device)
            value = float(self.faceqnet(x).reshape(-1)[0])
        else:
            value = prob * plaus
        return dict(fqi=value, prob=prob, landmarks=plaus, face=True)

    def scores(self, images):
        """List of dicts, one per [H, W, 3] uint8 image."""
        return [self.score(im) for im in images]
