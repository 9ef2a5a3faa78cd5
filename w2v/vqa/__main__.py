"""`python -m w2v.vqa`: train and evaluate the VQA-style classifier (w2v/conf/vqa.yaml)."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from ..atomic import atomic_path
from ..config import W2VError
from .config import parse_vqa_config
from .run import run_vqa

OUTPUT_NAMES = ("metrics.json", "model.pt", "tb")


def refuse_earlier_outputs(run_dir: Path, overwrite: bool) -> None:
    """A run dir that already holds a VQA run's outputs is only reused with overwrite=true."""
    found = [name for name in OUTPUT_NAMES if (run_dir / name).exists()]
    if found and not overwrite:
        raise W2VError(f"run dir {run_dir} already holds an earlier run's outputs ({', '.join(found)}); "
                       "replace them with overwrite=true or choose another hydra.run.dir")


@hydra.main(version_base="1.3", config_path="../conf", config_name="vqa")
def hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        raw = OmegaConf.to_container(cfg, resolve=True)
        run_cfg = parse_vqa_config(raw)
        overwrite = raw.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise W2VError(f"overwrite must be true or false, got {overwrite!r}")
        refuse_earlier_outputs(run_dir, overwrite)
        with atomic_path(run_dir / "config.resolved.yaml") as tmp:
            tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
        run_vqa(run_cfg, run_dir, cache_dir=Path(to_absolute_path(run_cfg.cache_dir)))
    except W2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    hydra_main()


if __name__ == "__main__":
    main()
