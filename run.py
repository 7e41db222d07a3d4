"""Entry point: `python run.py --strategy random` runs a study; `python run.py --help` for more."""

from hparams_lab.cli.app import main

if __name__ == "__main__":
    main()
