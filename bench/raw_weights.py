"""The raw weights of a run trained with the moving average, as a checkpoint of their own.

    python bench/raw_weights.py RUN/last.pt RAW.pt
    centernet val --weights RAW.pt --data ...

With ``ema`` on, a run's checkpoints hold the moving average as their model; ``last.pt`` also keeps the raw
weights of the last step in its ``train_state`` (to resume exactly). This writes those raw weights into a copy
of the checkpoint, without the train state, so that the raw and the averaged weights of one run can be
validated side by side: a paired comparison, free of the run-to-run noise of two trainings.
"""

from __future__ import annotations

import argparse

from centernet.engine.checkpoint import load_plain, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("last", help="a run's last.pt (it holds the train state)")
    parser.add_argument("out", help="where to write the checkpoint with the raw weights")
    args = parser.parse_args()
    state = load_plain(args.last, "checkpoint")
    train_state = state.pop("train_state", None)
    if train_state is None:
        raise SystemExit(f"{args.last}: no train state (only a run's last.pt has the raw weights)")
    if train_state.get("ema") is None:
        print(f"note: {args.last} was trained without the moving average; its model is already the raw weights")
    state["model"] = train_state["model"]
    state["metrics"] = {}
    save_checkpoint(state, args.out)
    print(f"wrote {args.out}: the raw weights after step {train_state['step']}")


if __name__ == "__main__":
    main()
