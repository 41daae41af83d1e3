"""The embedder injection point (``use_embedder``) and the fake model the unit tier runs on."""

import numpy as np
import pytest

from assistant.config import Settings
from assistant.embeddings import get_embedder, use_embedder
from assistant.errors import ModelError
from tests.helpers import FakeEmbedder

pytestmark = pytest.mark.unit


def test_a_registered_embedder_serves_its_name_only_while_registered(tmp_path):
    settings = Settings(index_dir=tmp_path, embedding_model="stand-in", model_cache_dir=tmp_path / "models")
    stand_in = FakeEmbedder("stand-in", size=8)
    with use_embedder("stand-in", stand_in) as registered:
        assert registered is stand_in
        assert get_embedder(settings) is stand_in and get_embedder(settings.model_copy()) is stand_in
        with pytest.raises(ValueError, match="registered as 'stand-in' already"):
            with use_embedder("stand-in", FakeEmbedder("stand-in")):
                pass
        assert get_embedder(settings) is stand_in  # the failed registration changed nothing
    # Gone: the name is a model folder again, and there is none.
    with pytest.raises(ModelError, match="embedding model folder not found or incomplete: stand-in"):
        get_embedder(settings)


def test_the_fake_model_is_deterministic_and_normalised():
    fake = FakeEmbedder(size=16)
    a = fake.encode(["Japan banned Huawei equipment.", "Another text."])
    assert a.dtype == np.float32 and a.shape == (2, 16)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(FakeEmbedder(size=16).encode(["Japan banned Huawei equipment."])[0], a[0])
    assert abs(float(a[0] @ a[1])) < 0.99  # different texts, different vectors
    assert fake.embed_query("Another text.") == pytest.approx(a[1].tolist())
    assert fake.count_tokens("Japan banned Huawei, in 2018.") == 9  # 5 words, 2 marks, [CLS] and [SEP]
