"""Image loading that fails with a message naming the file and the fix."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class StrictLoadImageFromFile(LoadImageFromFile):
    """:class:`mmcv.transforms.LoadImageFromFile` with clear errors for bad image files.

    mmcv's loader reports a corrupt file as an ``AssertionError`` (or a decoder's own exception) and accepts any
    image size. This one raises

    * ``FileNotFoundError`` naming a missing file;
    * ``ValueError`` naming a file that is empty or cannot be decoded as an image;
    * ``ValueError`` naming an image smaller than ``min_size`` pixels on a side.

    With ``ignore_empty=True`` a missing or undecodable file gives ``None`` instead, and mmengine's training
    dataset then draws another sample (mmcv's behaviour).

    It is registered in mmengine's root TRANSFORMS, so mmdet, mmseg and mmpretrain pipelines can all use it.
    Inference pipelines keep the plain ``LoadImageFromFile``: the mmdet/mmseg/mmpretrain inferencers look for that
    type name to swap in their own array loader.

    Args:
        min_size (int): smallest accepted height and width, before any resize. The default 32 is the backbone's
            total stride: a smaller image leaves its last stage with less than one pixel of real content, and
            v1 models cannot take inputs under 4 pixels at all. Defaults to 32.
        **kwargs: arguments of :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def __init__(self, min_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(min_size, int) or min_size < 1:
            raise ValueError(f'min_size must be a positive int, got {min_size!r}')
        self.min_size = min_size

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img_bytes = self._read(filename)
        except FileNotFoundError as err:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f'image file not found: {filename} (listed in the dataset\'s annotations; '
                                    'check data_root / data_prefix, or remove the entry)') from err
        img = None
        try:
            if img_bytes:
                img = mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as err:  # each decoder backend raises its own types for broken data
            decode_error = err
        else:
            decode_error = None
        if img is None:
            if self.ignore_empty:
                return None
            detail = f' ({decode_error})' if decode_error is not None else ''
            raise ValueError(f'cannot decode image file {filename}: it is empty, corrupt or not an image '
                             f'({len(img_bytes)} bytes){detail}. Replace the file or remove it from the '
                             'annotations') from decode_error
        height, width = img.shape[:2]
        if min(height, width) < self.min_size:
            raise ValueError(f'image {filename} is {height}x{width} pixels, smaller than the minimum of '
                             f'{self.min_size} on each side that this pipeline accepts (min_size of '
                             f'{type(self).__name__}). Remove or upscale the image')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _read(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            return fileio.FileClient.infer_client(self.file_client_args, filename).get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', min_size={self.min_size})'
