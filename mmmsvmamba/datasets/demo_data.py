"""Deterministic synthetic shape datasets for the demos and tests: COCO instances and an ADE20K-style layout.

Every image is drawn from its own seed (``seed * 100003 + index``), so a dataset is identical on every machine
with the same numpy/Pillow/OpenCV, and a subset of a larger dataset equals the smaller one. What makes the data
non-trivial:

* four shape classes (:data:`CLASSES`) with random rotation and sizes from 10 to 70 pixels (scale changes);
  in the COCO set a shape's colour is random (it says nothing about the class); in the ADE20K set each class
  also has its own family of hues (:data:`SEG_CLASS_HUES`), see :func:`make_ade` for why;
* shapes drawn in random order, so later ones occlude earlier ones; masks, boxes and areas describe the
  *visible* part; an instance left with fewer than :data:`MIN_VISIBLE_PIXELS` visible pixels is not annotated
  (a sliver that no one could label);
* backgrounds with colour gradients, noise and distractor strokes, images of different sizes and aspect ratios;
* about 8% of the images contain no object at all (they have an ``images`` entry and no annotation).

Layouts written by :func:`make_coco` and :func:`make_ade`::

    <root>/coco/annotations/instances_{train,val}.json   # COCO instance format, RLE masks of the visible parts
    <root>/coco/{train,val}/000000.jpg ...
    <root>/ade/images/{training,validation}/000000.jpg ...
    <root>/ade/annotations/{training,validation}/000000.png  # uint8: 0 unlabeled, 1 background, 2.. shapes

The ADE20K convention is kept: label 0 is "unlabeled" (a one-pixel band around every shape, where a human
annotator would hesitate) and is ignored through ``reduce_zero_label=True``; 1..5 become classes 0..4 of
:data:`SEG_CLASSES`.
"""
import colorsys
import json
import os
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ('circle', 'square', 'triangle', 'cross')
SEG_CLASSES = ('background', ) + CLASSES
PALETTE = [(220, 20, 60), (0, 128, 255), (255, 160, 0), (60, 180, 75)]
SEG_PALETTE = [(40, 40, 40)] + PALETTE
MIN_VISIBLE_PIXELS = 24
EMPTY_IMAGE_PROB = 0.08
# written next to the data; a generator change bumps it so stale data is regenerated
FORMAT_VERSION = 3
# HSV hue (0..1) at the centre of each class's colour family in the segmentation set: a quarter turn apart, so
# families stay apart under jitter (HUE_JITTER) and the demo's hue augmentation
SEG_CLASS_HUES = (0.0, 0.25, 0.5, 0.75)
HUE_JITTER = 0.04


def _shape_polygon(cls: str, cx: float, cy: float, size: float, angle: float) -> List[Tuple[float, float]]:
    """Outline of a shape of the given class as a polygon (circles are drawn separately)."""
    r = size / 2
    if cls == 'square':
        corners = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif cls == 'triangle':
        corners = [(r * np.cos(a), r * np.sin(a)) for a in np.deg2rad([-90, 30, 150])]
    elif cls == 'cross':
        t = r / 3  # half width of a bar
        corners = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t), (-r, t), (-r, -t),
                   (-t, -t)]
    else:
        raise ValueError(f'no polygon for class {cls!r}')
    c, s = np.cos(angle), np.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


def _draw_shape_mask(cls: str, height: int, width: int, cx: float, cy: float, size: float,
                     angle: float) -> np.ndarray:
    canvas = Image.new('L', (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if cls == 'circle':
        r = size / 2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        draw.polygon(_shape_polygon(cls, cx, cy, size, angle), fill=255)
    return np.asarray(canvas) > 127


def _background(rng: np.random.RandomState, height: int, width: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    direction = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx * np.cos(direction) + yy * np.sin(direction))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(0, 5)):  # distractor strokes: edges that are not objects
        points = [tuple(rng.uniform(0, [width, height])) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.uniform(0, 255, 3)), width=int(rng.randint(1, 3)))
    return np.asarray(canvas).astype(np.float32)


def _family_colour(rng: np.random.RandomState, hue: float) -> np.ndarray:
    """A saturated, not too dark RGB colour whose hue is within HUE_JITTER of ``hue``."""
    h = (hue + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))) * 255


def _distinct_colour(rng: np.random.RandomState, reference: np.ndarray, hue: Optional[float] = None) -> np.ndarray:
    """A colour at least 90 (Euclidean RGB) away from ``reference``, so every shape is visible: any colour, or
    one of the family around ``hue``. After 100 misses, the farthest candidate."""
    farthest, farthest_distance = None, -1.0
    for _ in range(100):
        colour = rng.uniform(0, 255, 3) if hue is None else _family_colour(rng, hue)
        distance = np.linalg.norm(colour - reference)
        if distance > 90:
            return colour
        if distance > farthest_distance:
            farthest, farthest_distance = colour, distance
    return farthest


def render_image(seed: int,
                 class_hues: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, np.ndarray, List[int], List[int]]:
    """Draw one image; with ``class_hues``, a shape of class ``i`` takes its colour from the family around
    ``class_hues[i]``, otherwise any colour.

    Returns:
        ``(image, instance_map, labels, areas)``: an RGB uint8 image (H, W, 3); an int32 map (H, W) holding, per
        pixel, the 1-based index of the visible instance or 0; the class index of each instance; the pixel area
        of each instance before later ones covered it.
    """
    if class_hues is not None and len(class_hues) != len(CLASSES):
        raise ValueError(f'class_hues needs one hue per class of {CLASSES}, got {len(class_hues)}: {class_hues}')
    rng = np.random.RandomState(seed)
    height, width = (int(v) for v in rng.randint(112, 193, size=2))
    img = _background(rng, height, width)
    instance_map = np.zeros((height, width), np.int32)
    labels, areas = [], []
    num_objects = 0 if rng.uniform() < EMPTY_IMAGE_PROB else rng.randint(1, 6)
    for _ in range(num_objects):
        label = rng.randint(len(CLASSES))
        size = rng.uniform(10, 70)
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        mask = _draw_shape_mask(CLASSES[label], height, width, cx, cy, size, rng.uniform(0, 2 * np.pi))
        if not mask.any():
            continue
        colour = _distinct_colour(rng, img[mask].mean(0), None if class_hues is None else class_hues[label])
        shade = rng.uniform(0.75, 1.0, size=(height, width, 1))  # uneven lighting inside the shape
        img[mask] = colour[None] * shade[mask]
        labels.append(int(label))
        areas.append(int(mask.sum()))
        instance_map[mask] = len(labels)
    img = img + rng.normal(0, 6, img.shape)
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(image), instance_map, labels, areas


def _mask_rle(mask: np.ndarray) -> Dict:
    """COCO compressed RLE of a binary mask: exact, unlike polygons through pixel centres, which lose half a
    pixel all round (a third of a 10-pixel shape) and cannot describe holes left by occluders."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii'))


def _coco_split(root: str, split: str, num_images: int, seed: int) -> Dict:
    image_dir = os.path.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        image, instance_map, labels, _ = render_image(seed * 100003 + i)
        file_name = f'{i:06d}.jpg'
        Image.fromarray(image).save(os.path.join(image_dir, file_name), quality=92)
        images.append(dict(id=i, file_name=file_name, height=image.shape[0], width=image.shape[1]))
        for index, label in enumerate(labels, start=1):
            mask = instance_map == index
            if mask.sum() < MIN_VISIBLE_PIXELS:
                continue
            ys, xs = np.nonzero(mask)
            x0, y0 = float(xs.min()), float(ys.min())
            annotations.append(
                dict(id=len(annotations) + 1, image_id=i, category_id=label + 1, segmentation=_mask_rle(mask),
                     area=float(mask.sum()), bbox=[x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0],
                     iscrowd=0))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)])


def _ade_split(root: str, split: str, num_images: int, seed: int):
    import cv2
    image_dir = os.path.join(root, 'images', split)
    label_dir = os.path.join(root, 'annotations', split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    kernel = np.ones((3, 3), np.uint8)
    for i in range(num_images):
        image, instance_map, labels, _ = render_image(seed * 100003 + i, SEG_CLASS_HUES)
        semantic = np.ones(instance_map.shape, np.uint8)  # 1 = background
        unlabeled = np.zeros(instance_map.shape, bool)
        for index, label in enumerate(labels, start=1):
            mask = instance_map == index
            if not mask.any():
                continue
            semantic[mask] = label + 2
            edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, kernel).astype(bool)
            unlabeled |= edge
        semantic[unlabeled] = 0
        Image.fromarray(image).save(os.path.join(image_dir, f'{i:06d}.jpg'), quality=92)
        Image.fromarray(semantic).save(os.path.join(label_dir, f'{i:06d}.png'))


def _stamp(kind: str, num_train: int, num_val: int, seed: int) -> str:
    return json.dumps(dict(kind=kind, version=FORMAT_VERSION, num_train=num_train, num_val=num_val, seed=seed))


def _up_to_date(root: str, stamp: str, generated: Tuple[str, ...]) -> bool:
    """True when ``root`` holds data made with ``stamp``; otherwise clear what we generated before."""
    path = os.path.join(root, 'STAMP.json')
    if os.path.isfile(path):
        with open(path) as f:
            if f.read() == stamp:
                return True
    # an older or differently sized set: remove it, since mmseg lists image folders rather than an index file
    for name in generated + ('STAMP.json', ):
        target = os.path.join(root, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.isfile(target):
            os.remove(target)
    return False


def make_coco(root: str, num_train: int = 240, num_val: int = 60, seed: int = 0) -> str:
    """Write the COCO-format shape dataset under ``root`` (skipped when it is already there). Returns root."""
    stamp = _stamp('coco', num_train, num_val, seed)
    if _up_to_date(root, stamp, ('annotations', 'train', 'val')):
        return root
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    # train and val draw from disjoint seed ranges
    for split, num, split_seed in (('train', num_train, 2 * seed), ('val', num_val, 2 * seed + 1)):
        coco = _coco_split(root, split, num, split_seed)
        with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
    with open(os.path.join(root, 'STAMP.json'), 'w') as f:
        f.write(stamp)
    return root


def make_ade(root: str, num_train: int = 240, num_val: int = 60, seed: int = 0) -> str:
    """Write the ADE20K-layout shape dataset under ``root`` (skipped when it is already there). Returns root.

    Unlike the COCO set, each class has its own colour family (:data:`SEG_CLASS_HUES`). Telling the four shapes
    apart by outline alone is easy for a detector, which pools a whole object into one RoI feature, but a
    segmentor trained from scratch must label every pixel from a small neighbourhood, and on 2 CPU cores it
    needed far more iterations than a demo has (docs/detection_segmentation.md, *Demo on generated data*).
    """
    stamp = _stamp('ade', num_train, num_val, seed)
    if _up_to_date(root, stamp, ('images', 'annotations')):
        return root
    for split, num, split_seed in (('training', num_train, 2 * seed), ('validation', num_val, 2 * seed + 1)):
        _ade_split(root, split, num, split_seed)
    with open(os.path.join(root, 'STAMP.json'), 'w') as f:
        f.write(stamp)
    return root
