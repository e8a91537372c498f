"""The plate reader measured on plates the project draws itself (no labelled plate photos are reachable).

testset.py   drawn plates on truck crops, deterministic from a seed, each with its conditions
evaluate.py  run the edge's PlateRecognizer on them: detection, exact reads, character accuracy, CPU
report.py    the markdown and JSON report and the plot of exact reads against plate width
"""
