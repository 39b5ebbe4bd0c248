"""Precious1GPT (Urban et al., Aging 2023), stage by stage: TSS200 promoters, the real-anchored
simulator and its cohorts, the multimodal feature space, the clock problem, the TabTransformer
clock and its baselines, Optuna tuning, cross-validation, iPSC/fetal validation, transfer
learning to case-control classifiers, SHAP importance and rankings, enrichment and targets."""
