namespace BinEngine.Evaluation;

/// <summary>Accuracy, macro-F1 and the confusion matrix of predictions against gold labels.</summary>
/// <param name="N">Samples compared.</param>
/// <param name="Accuracy">Fraction of samples whose prediction equals the gold label (0 when N = 0).</param>
/// <param name="MacroF1">Mean per-class F1 over the classes present (see <see cref="Compute"/>).</param>
/// <param name="Confusion">Counts [gold, predicted].</param>
internal sealed record ClassificationMetrics(int N, double Accuracy, double MacroF1, long[,] Confusion)
{
    /// <summary>
    /// Compares <paramref name="predicted"/> with <paramref name="gold"/> over <paramref name="classes"/> classes.
    /// Macro-F1 is the mean of the per-class F1 = 2·TP / (2·TP + FP + FN) over the classes that occur in the gold
    /// labels or the predictions (as scikit-learn's f1_score(average="macro")); a class with neither has no F1.
    /// </summary>
    public static ClassificationMetrics Compute(ReadOnlySpan<int> gold, ReadOnlySpan<int> predicted, int classes)
    {
        if (gold.Length != predicted.Length)
            throw new ArgumentException($"{gold.Length} gold labels but {predicted.Length} predictions");
        var confusion = new long[classes, classes];
        long correct = 0;
        for (int i = 0; i < gold.Length; i++)
        {
            confusion[gold[i], predicted[i]]++;
            if (gold[i] == predicted[i]) correct++;
        }
        double f1Sum = 0;
        int present = 0;
        for (int c = 0; c < classes; c++)
        {
            long tp = confusion[c, c], fn = 0, fp = 0;
            for (int o = 0; o < classes; o++)
            {
                if (o == c) continue;
                fn += confusion[c, o];
                fp += confusion[o, c];
            }
            if (tp + fn + fp == 0) continue;
            present++;
            f1Sum += 2.0 * tp / (2.0 * tp + fp + fn);
        }
        int n = gold.Length;
        return new ClassificationMetrics(n, n == 0 ? 0 : (double)correct / n, present == 0 ? 0 : f1Sum / present, confusion);
    }
}
