using BinEngine.Evaluation;
using BinEngine.Runtime;

namespace BinEngine.Tests.Evaluation;

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
        Assert.Equal(50, ModelEvaluation.Percentile(sorted, 0.50));
        Assert.Equal(99, ModelEvaluation.Percentile(sorted, 0.99));
        Assert.Equal(7, ModelEvaluation.Percentile([7], 0.99));
        Assert.True(double.IsNaN(ModelEvaluation.Percentile([], 0.5)));
    }

    [Fact]
    public void EceWeighsEachBinsGapByItsShare()
    {
        // Bin (13/15, 14/15]: four answers at 0.9, three right: |0.75 − 0.9| · 4/6 = 0.1.
        // Bin (8/15, 9/15] or (9/15, 10/15]: two answers at 0.6, one right: |0.5 − 0.6| · 2/6 = 1/30.
        float[] conf = [0.9f, 0.9f, 0.9f, 0.9f, 0.6f, 0.6f];
        int[] predicted = [1, 1, 1, 1, 0, 0];
        int[] gold = [1, 1, 1, 0, 0, 1];
        Assert.Equal(0.1 + 1.0 / 30, Calibration.ExpectedCalibrationError(conf, predicted, gold), 6);
    }

    [Fact]
    public void EceDependsOnTheBins()
    {
        // A right answer at 0.95 and a wrong one at 0.55: 15 bins separate them (|1 − .95|/2 + |0 − .55|/2 = 0.3);
        // one bin averages them first (|0.5 − 0.75| = 0.25). Perfect calibration gives 0.
        float[] conf = [0.95f, 0.55f];
        Assert.Equal(0.3, Calibration.ExpectedCalibrationError(conf, [1, 1], [1, 0]), 6);
        Assert.Equal(0.25, Calibration.ExpectedCalibrationError(conf, [1, 1], [1, 0], bins: 1), 6);
        Assert.Equal(0.0, Calibration.ExpectedCalibrationError([1f, 0.5f, 0.5f], [0, 0, 0], [0, 0, 1]), 9);
    }

    [Fact]
    public void BinomialCdfIsExact()
    {
        Assert.Equal(56.0 / 1024, LearnThenTest.BinomialCdf(2, 10, 0.5), 14);  // (1 + 10 + 45) / 2^10
        Assert.Equal(Math.Pow(0.995, 872), LearnThenTest.BinomialCdf(0, 872, 0.005), 14);
        Assert.Equal(0.5, LearnThenTest.BinomialCdf(5, 11, 0.5), 12);          // symmetry
        // 2^−20001 underflows a double; the log-space sum does not. By symmetry P(X ≤ 10000) = 1/2 for n = 20001.
        Assert.Equal(0.5, LearnThenTest.BinomialCdf(10000, 20001, 0.5), 9);
        Assert.Equal(1.0, LearnThenTest.BinomialCdf(10, 10, 0.3));
        Assert.Equal(0.0, LearnThenTest.BinomialCdf(-1, 10, 0.3));
    }

    [Fact]
    public void MinimumSamplesIsWhereNoLossFirstCertifies()
    {
        int n = LearnThenTest.MinimumSamples(0.005, 0.05);
        Assert.Equal(598, n);
        Assert.True(LearnThenTest.BinomialCdf(0, n, 0.005) <= 0.05);
        Assert.True(LearnThenTest.BinomialCdf(0, n - 1, 0.005) > 0.05);
    }

    private static OperatingPoint Point(string name, double accuracy, double saved) =>
        new(name, null, 0, new ClassificationMetrics(10, accuracy, accuracy, new long[2, 2]), 1, saved, 0);

    [Fact]
    public void ParetoFrontKeepsTheUndominatedPointsMostSavedFirst()
    {
        var points = new[]
        {
            Point("a", 0.80, 0.10), Point("b", 0.82, 0.05), Point("c", 0.79, 0.50), Point("d", 0.78, 0.40), // d: c beats it on both
            Point("e", 0.82, 0.00), // ties b on accuracy, saves less: dominated
            Point("f", 0.80, 0.10), // equal to a: the first is kept
        };
        Assert.Equal(["c", "a", "b"], ExitAnalysis.ParetoFront(points).Select(p => p.Name));
    }
}
