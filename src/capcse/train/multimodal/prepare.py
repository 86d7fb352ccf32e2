"""A multimodal recipe turned into what the Trainer needs: :func:`prepare_multimodal`."""

from __future__ import annotations

from capcse.train.multimodal.config import MultimodalConfig
from capcse.train.multimodal.data import TextLookup, load_multimodal_data
from capcse.train.multimodal.objective import MultimodalObjective
from capcse.train.multimodal.sampler import MixedModalityBatchSampler
from capcse.train.multimodal.teachers import TeacherBank


def prepare_multimodal(recipe, model, text_dataset, *, log=print, image_encoder=None, teacher_encoders=None):
    """(dataset, objective, batch sampler class) for a multimodal recipe (used by ``capcse train``)."""
    cfg = MultimodalConfig.from_recipe(recipe)
    device = model.device
    data_dir = recipe.data.data_dir or recipe.eval.data_dir
    data = load_multimodal_data(cfg, text_dataset, seed=recipe.train.seed, data_dir=data_dir,
                                device=recipe.train.device, image_encoder=image_encoder, log=log)
    log(f"multimodal ({recipe.loss.name}): {data.summary['pairs_used']} image-caption pairs over "
        f"{data.summary['images_used']} images (features: {data.summary['feature_cache']}), "
        f"{data.summary['text_rows']} text rows")
    texts = TextLookup(text_dataset, data.captions)
    teacher = None
    if cfg.needs_teacher():
        teacher = TeacherBank(cfg.teachers, alpha=cfg.alpha, mode=cfg.teacher_mode, cache_dir=cfg.feature_cache,
                              batch_size=cfg.teacher_batch_size, device=device, encoders=teacher_encoders,
                              pooler=cfg.teacher_pooler, max_length=recipe.model.max_length)
        need = list(data.captions)
        if cfg.rank_on_text_batches and text_dataset is not None:
            need += list(text_dataset[text_dataset.column_names[0]])
        teacher.prepare(need)
    objective = MultimodalObjective(model, recipe.loss.name, cfg, temperature=recipe.loss.temperature,
                                    image_features=data.image_features, pair_image_rows=data.pair_image_rows,
                                    texts=texts, teacher=teacher,
                                    gather_across_devices=recipe.loss.gather_across_devices)
    objective.to(device)
    return data.dataset, objective, MixedModalityBatchSampler
