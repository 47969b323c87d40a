/* Shipped prebuilt, setuid, owned by a student: run by a kit that keeps modes as root, it
 * has euid 0 and writes where only root may (MARK, given with -DMARK). */
#include <stdio.h>
#include <unistd.h>
int main(void)
{
    FILE *f = fopen(MARK, "w");
    if (f) {
        fprintf(f, "euid=%d\n", (int)geteuid());
        fclose(f);
    }
    printf("euid=%d\n", (int)geteuid());
    return geteuid() == 0 ? 42 : 43;
}
