set terminal png size 1100,500
set output 'acc_mnist_iid_30.png'
set title 'mnist, IID, 30% malicious clients'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set yrange [0:1]
set ylabel 'final test accuracy'
set key outside right
set xtics rotate by -20 noenhance
set key noenhance
plot 'acc_mnist_iid_30.dat' using 2:xtic(1) title 'fedavg', 'acc_mnist_iid_30.dat' using 3:xtic(1) title 'median', 'acc_mnist_iid_30.dat' using 4:xtic(1) title 'trimmed_mean', 'acc_mnist_iid_30.dat' using 5:xtic(1) title 'krum', 'acc_mnist_iid_30.dat' using 6:xtic(1) title 'multikrum', 'acc_mnist_iid_30.dat' using 7:xtic(1) title 'clip', 'acc_mnist_iid_30.dat' using 8:xtic(1) title 'centered_clip'
