"""HallmarkAge (GEM workshop, ICLR 2026), stage by stage: hallmark gene-set frameworks, the
muscle-atlas simulator, per-cell (or per-sample) hallmark scoring, ON/OFF states, per-hallmark
classifiers, hallmark space, pseudobulk metacells, ridge clocks and their diagnostics."""
