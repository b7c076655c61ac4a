#!/bin/sh
# Draw Figure 3 from the committed results: results/fig3.png (VFE against window size, uniform
# and VFE-guided, MNIST and Colored MNIST) and results/fig3_accuracy.png (test accuracy against
# window size). Needs gnuplot (gnuplot-nox).
set -eu
cd "$(dirname "$0")/results"
for ds in mnist cmnist; do
  for st in uniform guided; do
    awk -F, -v ds=$ds -v st=$st 'NR>2 && $1==ds && $2==st {print $3, $6, $8}' fig3_vfe.csv > /tmp/fv_fig3_${ds}_${st}.dat
  done
done
gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output 'fig3.png'
set logscale x 2
set xlabel 'window size WS (uniform: WS; guided: WS_max with WS_min = 2)'
set ylabel 'measured VFE (mean; B = 8)'
set key bottom right
set grid
plot '/tmp/fv_fig3_mnist_uniform.dat' u 1:2 w lp t 'MNIST uniform', \
     '/tmp/fv_fig3_mnist_guided.dat' u 1:2 w lp t 'MNIST VFE-guided', \
     '/tmp/fv_fig3_cmnist_uniform.dat' u 1:2 w lp t 'Colored MNIST uniform', \
     '/tmp/fv_fig3_cmnist_guided.dat' u 1:2 w lp t 'Colored MNIST VFE-guided'
GP
if [ -f fig3_accuracy.csv ]; then
  for m in lenet5 resnet20; do
    for st in uniform guided; do
      awk -F, -v m=$m -v st=$st 'NR>2 && $6==m && ($2==st || $2=="none") {print $3, $11}' fig3_accuracy.csv > /tmp/fv_acc_${m}_${st}.dat
    done
  done
  gnuplot <<GP
set terminal pngcairo size 800,500 noenhanced
set output 'fig3_accuracy.png'
set logscale x 2
set xlabel 'window size WS (1: unmixed)'
set ylabel 'test accuracy on mixed MNIST test images'
set key bottom left
set grid
plot '/tmp/fv_acc_lenet5_uniform.dat' u 1:2 w lp t 'LeNet-5 uniform', \
     '/tmp/fv_acc_lenet5_guided.dat' u 1:2 w lp t 'LeNet-5 VFE-guided', \
     '/tmp/fv_acc_resnet20_uniform.dat' u 1:2 w lp t 'ResNet-20 uniform', \
     '/tmp/fv_acc_resnet20_guided.dat' u 1:2 w lp t 'ResNet-20 VFE-guided'
GP
fi
rm -f /tmp/fv_fig3_*.dat /tmp/fv_acc_*.dat
echo "wrote $(pwd)/fig3.png"
