using BinEngine.Cli.Evaluation;

namespace BinEngine.Tests.Cli;

public class EvaluationMathTests
{
    [Fact]
    public void MacroF1AveragesPerClassF1OverClassesPresent()
    {
        // gold:      0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        // class 0: tp 2, fp 0, fn 1 → F1 = 4/5; class 1: tp 1, fp 1, fn 1 → 1/2; class 2: tp 1, fp 1, fn 0 → 2/3.
        var m = ClassificationMetrics.Compute([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], classes: 4);
        Assert.Equal(4.0 / 6, m.Accuracy, 12);
        Assert.Equal((0.8 + 0.5 + 2.0 / 3) / 3, m.MacroF1, 12); // class 3 never occurs: not averaged
        Assert.Equal(2, m.Confusion[0, 0]);
        Assert.Equal(1, m.Confusion[0, 1]);
        Assert.Equal(1, m.Confusion[1, 2]);
        Assert.Equal(0, m.Confusion[2, 0]);
    }

    [Fact]
    public void PercentileIsNearestRank()
    {
        double[] sorted = Enumerable.Range(1, 100).Select(i => (double)i).ToArray();
        Assert.Equal(50, Evaluator.Percentile(sorted, 0.50));
        Assert.Equal(99, Evaluator.Percentile(sorted, 0.99));
        Assert.Equal(7, Evaluator.Percentile([7], 0.99));
        Assert.True(double.IsNaN(Evaluator.Percentile([], 0.5)));
    }
}
