set terminal png size 1100,500
set output 'backdoor.png'
set title 'Backdoor success rate (lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set yrange [0:1]
set ylabel 'backdoor success'
set key outside right
set xtics rotate by -20 noenhance
set key noenhance
plot 'backdoor.dat' using 2:xtic(1) title 'fedavg', 'backdoor.dat' using 3:xtic(1) title 'median', 'backdoor.dat' using 4:xtic(1) title 'trimmed_mean', 'backdoor.dat' using 5:xtic(1) title 'krum', 'backdoor.dat' using 6:xtic(1) title 'multikrum', 'backdoor.dat' using 7:xtic(1) title 'clip', 'backdoor.dat' using 8:xtic(1) title 'centered_clip'
