"""StrictLoadImageFromFile: bad image files fail with errors that name them."""
import numpy as np
import pytest
from PIL import Image

from mmmsvmamba.datasets import StrictLoadImageFromFile


def _write(path, size=(48, 40)):
    Image.fromarray(np.full((size[1], size[0], 3), 127, np.uint8)).save(path)
    return str(path)


def test_loads_a_good_image(tmp_path):
    results = StrictLoadImageFromFile()(dict(img_path=_write(tmp_path / 'ok.jpg')))
    assert results['img'].shape == (40, 48, 3) and results['img_shape'] == (40, 48)


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='image file not found: .*missing.jpg'):
        StrictLoadImageFromFile()(dict(img_path=path))


@pytest.mark.parametrize('content', [b'', b'not an image at all', b'\xff\xd8\xff\xe0' + bytes(50)])
def test_corrupt_file_is_named(tmp_path, content):
    path = tmp_path / 'broken.jpg'
    path.write_bytes(content)
    with pytest.raises(ValueError, match='cannot decode image file .*broken.jpg'):
        StrictLoadImageFromFile()(dict(img_path=str(path)))


def test_too_small_image_is_named(tmp_path):
    path = _write(tmp_path / 'tiny.png', size=(64, 20))
    with pytest.raises(ValueError, match=r'image .*tiny.png is 20x64 pixels, smaller than the minimum of 32'):
        StrictLoadImageFromFile()(dict(img_path=path))
    assert StrictLoadImageFromFile(min_size=16)(dict(img_path=path))['img'].shape == (20, 64, 3)


def test_ignore_empty_skips_instead_of_raising(tmp_path):
    path = tmp_path / 'broken.jpg'
    path.write_bytes(b'junk')
    loader = StrictLoadImageFromFile(ignore_empty=True)
    assert loader(dict(img_path=str(path))) is None
    assert loader(dict(img_path=str(tmp_path / 'missing.jpg'))) is None


def test_bad_min_size():
    with pytest.raises(ValueError, match='min_size'):
        StrictLoadImageFromFile(min_size=0)
